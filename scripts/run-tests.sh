#!/usr/bin/env bash
# Run the whole freevsa test suite, stage by stage:
#
#   deps         install build and test dependencies (scripts/install-deps.sh)
#   unit         Release build in build/ + ctest
#   asan         ASan+UBSan build (gcc) in build-asan/ + ctest
#   tsan         ThreadSanitizer build (clang) in build-tsan/ + ctest, every test bounded in time
#   fuzz         clang libFuzzer build in build-fuzz/ + a short run of every
#                fuzz target
#   integration  every test/integration/*.sh against build/daemon/freevsa
#                (except sourced helpers named lib*.sh or _*.sh), each run
#                with bash from the repository root, stdin /dev/null, in its
#                own process group that is killed when the script ends
#
# A failing stage does not stop the run; the script exits non-zero if any
# stage failed and ends with a summary table and the line 'N passed, N failed'
# (counting stages). Logs go to build/test-logs/.
#
# Environment:
#   FREEVSA_ONLY=unit,integration  run only these stages (comma separated)
#   FREEVSA_SKIP_DEPS=1            skip the deps stage
#   FREEVSA_JOBS=N                 build parallelism (default 2)
#   FUZZ_SECONDS=N                 run time per fuzz target (default 30)
#   FREEVSA_LONG=1                 long run: 600 s per fuzz target
#   FREEVSA_IT_TIMEOUT=N           default timeout per integration script
#                                  (900 s); a script can raise its own with a
#                                  header line '# timeout: 1800' in its first
#                                  20 lines, and FREEVSA_TIMEOUT_<NAME>=N
#                                  overrides both (NAME = script name without
#                                  .sh, upper case, non-alphanumerics as _,
#                                  e.g. FREEVSA_TIMEOUT_KERNEL_INITIATOR=2400)
#   FREEVSA_IT_ONLY=a,b            run only these integration scripts
#                                  (names without .sh)
#   FREEVSA=path                   daemon binary for the integration scripts
#                                  (default build/daemon/freevsa)
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 2
export LC_ALL=C

ALL_STAGES=(deps unit asan tsan fuzz integration)
JOBS=${FREEVSA_JOBS:-2}
if [ -z "${FUZZ_SECONDS:-}" ]; then
  if [ "${FREEVSA_LONG:-0}" = 1 ]; then FUZZ_SECONDS=600; else FUZZ_SECONDS=30; fi
fi
IT_TIMEOUT=${FREEVSA_IT_TIMEOUT:-900}
LOG_DIR=$REPO/build/test-logs
export FREEVSA=${FREEVSA:-$REPO/build/daemon/freevsa}
# Sanitizer settings for every sanitized binary we run (unit tests and fuzzers).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# ---------------------------------------------------------------------------
# Stage selection

declare -A SELECTED=()
if [ -n "${FREEVSA_ONLY:-}" ]; then
  IFS=', ' read -r -a only <<<"$FREEVSA_ONLY"
  for s in "${only[@]}"; do
    [ -z "$s" ] && continue
    if [[ " ${ALL_STAGES[*]} " != *" $s "* ]]; then
      echo "run-tests: unknown stage '$s' in FREEVSA_ONLY (stages: ${ALL_STAGES[*]})" >&2
      exit 2
    fi
    SELECTED[$s]=1
  done
else
  for s in "${ALL_STAGES[@]}"; do SELECTED[$s]=1; done
fi
[ "${FREEVSA_SKIP_DEPS:-0}" = 1 ] && unset 'SELECTED[deps]'

mkdir -p "$LOG_DIR"

# ---------------------------------------------------------------------------
# Helpers

declare -A RESULT=() DURATION=() NOTE=()
SUB_ROWS=()          # extra summary rows (one per fuzz target / integration script)
CURRENT_PGID=""      # process group of the running integration script
CURRENT_PGFILE=""    # file the running integration script writes its group id to

header() {
  echo
  echo "=============================================================================="
  echo "== $*"
  echo "=============================================================================="
}

# log: the current stage's log file (set by run_stage)
LOG=/dev/null

# quiet CMD...: run CMD with its output only in the stage log.
quiet() {
  echo "\$ $*" >>"$LOG"
  "$@" >>"$LOG" 2>&1
}

# configure DIR CMAKE_ARGS...: configure DIR with Ninja unless already configured.
configure() {
  local dir=$1; shift
  local gen=(-G Ninja)
  [ -f "$dir/CMakeCache.txt" ] && gen=()
  echo "-- configure $dir"
  quiet cmake -S "$REPO" -B "$dir" "${gen[@]}" "$@"
}

build() {
  local dir=$1 t0=$SECONDS
  echo "-- build $dir (-j$JOBS)"
  if quiet cmake --build "$dir" -j "$JOBS"; then
    echo "   built in $((SECONDS - t0)) s"
  else
    echo "   BUILD FAILED after $((SECONDS - t0)) s"
    return 1
  fi
}

run_ctest() {
  local dir=$1
  echo "-- ctest $dir"
  echo "\$ ctest --test-dir $dir --output-on-failure --no-tests=error" >>"$LOG"
  ctest --test-dir "$dir" --output-on-failure --no-tests=error --timeout 300 \
    </dev/null 2>&1 | tee -a "$LOG"
  return "${PIPESTATUS[0]}"
}

# ---------------------------------------------------------------------------
# Stages (each returns 0 on pass, 1 on fail, 77 on "nothing to do")

stage_deps() {
  bash "$REPO/scripts/install-deps.sh" 2>&1 | tee -a "$LOG"
  return "${PIPESTATUS[0]}"
}

RELEASE_BUILT=""
release_build() {
  if [ -z "$RELEASE_BUILT" ]; then
    configure build -DCMAKE_BUILD_TYPE=Release -DFREEVSA_SANITIZE=OFF -DFREEVSA_FUZZ=OFF \
      && build build && RELEASE_BUILT=ok || RELEASE_BUILT=failed
  fi
  [ "$RELEASE_BUILT" = ok ]
}

stage_unit() {
  release_build || return 1
  run_ctest build
}

stage_asan() {
  configure build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFREEVSA_SANITIZE=ON -DFREEVSA_FUZZ=OFF \
    || return 1
  build build-asan || return 1
  run_ctest build-asan
}

# ThreadSanitizer: the unit tests, the replication ones (two nodes over real TCP) among them.
# Each test under 300 s (ctest's timeout); races halt the test that found them.
stage_tsan() {
  CC=clang CXX=clang++ configure build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFREEVSA_TSAN=ON -DFREEVSA_FUZZ=OFF \
    || return 1
  build build-tsan || return 1
  TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1} run_ctest build-tsan
}

stage_fuzz() {
  CC=clang CXX=clang++ configure build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFREEVSA_FUZZ=ON \
    || return 1
  build build-fuzz || return 1

  local bins=() src name bin
  for src in "$REPO"/test/fuzz/*_fuzz.cpp; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .cpp)
    bin=$REPO/build-fuzz/test/fuzz/$name
    if [ ! -x "$bin" ]; then
      echo "   missing fuzz binary $bin"
      return 1
    fi
    bins+=("$bin")
  done
  if [ ${#bins[@]} -eq 0 ]; then
    NOTE[fuzz]="no test/fuzz/*_fuzz.cpp; build only"
    echo "   no fuzz targets found (test/fuzz/*_fuzz.cpp)"
    return 0
  fi

  mkdir -p "$LOG_DIR/fuzz" "$REPO/build-fuzz/artifacts"
  local failed=0 flog rc t0 extra
  for bin in "${bins[@]}"; do
    name=$(basename "$bin")
    flog=$LOG_DIR/fuzz/$name.log
    mkdir -p "$REPO/build-fuzz/corpus/$name"
    extra=()
    # Optional checked-in seeds and dictionary.
    [ -d "$REPO/test/fuzz/corpus/$name" ] && extra+=("$REPO/test/fuzz/corpus/$name")
    [ -f "$REPO/test/fuzz/$name.dict" ] && extra=(-dict="$REPO/test/fuzz/$name.dict" "${extra[@]}")
    echo "-- fuzz $name for ${FUZZ_SECONDS} s (log: ${flog#"$REPO"/})"
    t0=$SECONDS
    # Outer timeout: safety net if the fuzzer itself wedges. The braces send
    # bash's own "Aborted ..." notice to the log instead of the console.
    {
      timeout -k 30 $((FUZZ_SECONDS + 300)) "$bin" \
        -max_total_time="$FUZZ_SECONDS" -timeout=25 -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix="$REPO/build-fuzz/artifacts/$name-" \
        "$REPO/build-fuzz/corpus/$name" "${extra[@]}"
    } </dev/null >"$flog" 2>&1
    rc=$?
    cat "$flog" >>"$LOG"
    if [ $rc -eq 0 ]; then
      echo "   PASS $name: $(grep -E '^Done [0-9]+ runs' "$flog" | tail -1)"
      SUB_ROWS+=("fuzz/$name|PASS|$((SECONDS - t0))|")
    else
      failed=1
      echo "   FAIL $name (exit $rc):"
      # The sanitizer report if there is one, else the end of the log.
      if grep -qE '==ERROR|runtime error|deadly signal' "$flog"; then
        grep -m1 -A40 -E '==ERROR|runtime error|deadly signal' "$flog"
      else
        tail -n 40 "$flog"
      fi | cut -c1-300 | sed 's/^/   | /'
      local art
      art=$(grep -oE 'Test unit written to [^ ]+' "$flog" | tail -1 | sed 's/Test unit written to //')
      [ -n "$art" ] && echo "   reproduce: $bin $art"
      SUB_ROWS+=("fuzz/$name|FAIL|$((SECONDS - t0))|${flog#"$REPO"/}")
    fi
  done
  return $failed
}

# Per-script timeout: FREEVSA_TIMEOUT_<NAME>, else '# timeout: N' header, else default.
script_timeout() {
  local script=$1 name var t
  name=$(basename "$script" .sh | tr '[:lower:]' '[:upper:]' | tr -c 'A-Z0-9\n' '_')
  var=FREEVSA_TIMEOUT_$name
  if [ -n "${!var:-}" ]; then echo "${!var}"; return; fi
  t=$(head -n 20 "$script" | sed -nE 's/^#[[:space:]]*timeout:[[:space:]]*([0-9]+).*/\1/p' | head -n 1)
  echo "${t:-$IT_TIMEOUT}"
}

kill_group() {
  local pg=$1
  [ -n "$pg" ] || return 0
  kill -TERM -- "-$pg" 2>/dev/null || return 0
  sleep 2
  kill -KILL -- "-$pg" 2>/dev/null || true
}

stage_integration() {
  local scripts=() s
  for s in "$REPO"/test/integration/*.sh; do
    [ -e "$s" ] || continue
    case $(basename "$s") in
      lib*.sh | _*.sh) continue ;;   # sourced helpers, not tests
    esac
    if [ -n "${FREEVSA_IT_ONLY:-}" ] &&
       [[ ",${FREEVSA_IT_ONLY// /}," != *",$(basename "$s" .sh),"* ]]; then
      continue
    fi
    scripts+=("$s")
  done
  if [ ${#scripts[@]} -eq 0 ]; then
    echo "   no integration scripts (test/integration/*.sh)"
    NOTE[integration]="no test/integration/*.sh"
    return 77
  fi
  if [ "$FREEVSA" = "$REPO/build/daemon/freevsa" ]; then
    release_build || return 1
  fi
  if [ ! -x "$FREEVSA" ]; then
    echo "   daemon binary $FREEVSA not found"
    return 1
  fi
  echo "   FREEVSA=$FREEVSA"

  mkdir -p "$LOG_DIR/integration"
  local failed=0 name slog t rc t0 pgfile status watcher
  for s in "${scripts[@]}"; do
    name=$(basename "$s" .sh)
    slog=$LOG_DIR/integration/$name.log
    pgfile=$LOG_DIR/integration/.$name.pgid
    t=$(script_timeout "$s")
    echo
    echo "-- integration $name (timeout ${t} s, log: ${slog#"$REPO"/})"
    t0=$SECONDS
    rm -f "$pgfile"
    # The script runs in its own session and process group, so that whatever
    # it leaves running (or is still running at the timeout) can be cleaned
    # up afterwards by that group id. --foreground: timeout stays in our
    # process group and passes Ctrl-C on to the script. Output goes to the
    # log file and is shown live by a tail that stops when the script itself
    # exits (a pipe to tee would wait for every leftover child as well).
    CURRENT_PGFILE=$pgfile
    : >"$slog"
    (
      while [ ! -s "$pgfile" ]; do sleep 0.05; done
      exec tail -n +1 -s 0.2 -f --pid="$(cat "$pgfile")" "$slog"
    ) &
    watcher=$!
    # shellcheck disable=SC2016 # $$ is expanded by the inner shell
    {
      timeout --foreground -k 30 "$t" \
        setsid bash -c 'echo $$ >"$1"; shift; exec bash "$@"' _ "$pgfile" "$s"
    } </dev/null >"$slog" 2>&1
    rc=$?
    [ -s "$pgfile" ] || kill "$watcher" 2>/dev/null
    wait "$watcher" 2>/dev/null
    CURRENT_PGID=$(cat "$pgfile" 2>/dev/null || true)
    kill_group "$CURRENT_PGID"
    CURRENT_PGID="" CURRENT_PGFILE=""
    rm -f "$pgfile"
    cat "$slog" >>"$LOG"
    status=PASS
    if [ "$rc" -eq 124 ] || { [ "$rc" -eq 137 ] && [ $((SECONDS - t0)) -ge "$t" ]; }; then
      status=TIMEOUT
    elif [ "$rc" -ne 0 ]; then
      status=FAIL
    fi
    echo "-- integration $name: $status (exit $rc, $((SECONDS - t0)) s)"
    if [ "$status" != PASS ]; then
      failed=1
      SUB_ROWS+=("integration/$name|$status|$((SECONDS - t0))|${slog#"$REPO"/}")
    else
      SUB_ROWS+=("integration/$name|PASS|$((SECONDS - t0))|")
    fi
  done
  return $failed
}

# ---------------------------------------------------------------------------
# Driver

on_interrupt() {
  echo
  echo "run-tests: interrupted"
  if [ -z "$CURRENT_PGID" ] && [ -n "$CURRENT_PGFILE" ]; then
    CURRENT_PGID=$(cat "$CURRENT_PGFILE" 2>/dev/null || true)
  fi
  kill_group "$CURRENT_PGID"
  exit 130
}
trap on_interrupt INT TERM

run_stage() {
  local stage=$1
  if [ -z "${SELECTED[$stage]:-}" ]; then
    RESULT[$stage]=SKIP
    DURATION[$stage]=0
    return
  fi
  LOG=$LOG_DIR/$stage.log
  : >"$LOG"
  header "stage: $stage   (log: ${LOG#"$REPO"/})"
  local t0=$SECONDS rc
  "stage_$stage"
  rc=$?
  DURATION[$stage]=$((SECONDS - t0))
  case $rc in
    0) RESULT[$stage]=PASS ;;
    77) RESULT[$stage]=SKIP ;;
    *) RESULT[$stage]=FAIL ;;
  esac
  echo "-- stage $stage: ${RESULT[$stage]} (${DURATION[$stage]} s)"
  if [ "${RESULT[$stage]}" = FAIL ]; then
    echo "-- last 60 lines of ${LOG#"$REPO"/}:"
    tail -n 60 "$LOG" | sed 's/^/   | /'
  fi
}

header "freevsa test suite"
echo "repo:    $REPO"
echo "stages:  $(for s in "${ALL_STAGES[@]}"; do [ -n "${SELECTED[$s]:-}" ] && printf '%s ' "$s"; done)"
echo "jobs:    $JOBS   fuzz: ${FUZZ_SECONDS} s/target   integration timeout: ${IT_TIMEOUT} s/script"
# shellcheck disable=SC1091
echo "host:    $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-unknown OS}")"
echo "started: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"

T_START=$SECONDS
for s in "${ALL_STAGES[@]}"; do
  run_stage "$s"
done

header "summary ($((SECONDS - T_START)) s)"
passed=0 failed=0
printf '%-32s %-8s %7s  %s\n' "stage" "result" "time" "log / note"
for s in "${ALL_STAGES[@]}"; do
  r=${RESULT[$s]}
  if [ "$r" = SKIP ] && [ -z "${NOTE[$s]:-}" ]; then
    info="not selected"
  else
    info="build/test-logs/$s.log${NOTE[$s]:+ (${NOTE[$s]})}"
  fi
  printf '%-32s %-8s %6ss  %s\n' "$s" "$r" "${DURATION[$s]}" "$info"
  if [ "$s" = fuzz ] || [ "$s" = integration ]; then
    for row in "${SUB_ROWS[@]}"; do
      IFS='|' read -r n rr d l <<<"$row"
      [[ $n == "$s"/* ]] || continue
      printf '  %-30s %-8s %6ss  %s\n' "${n#*/}" "$rr" "$d" "$l"
    done
  fi
  case $r in
    PASS) passed=$((passed + 1)) ;;
    FAIL) failed=$((failed + 1)) ;;
  esac
done
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
