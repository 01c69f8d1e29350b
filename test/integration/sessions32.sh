#!/usr/bin/env bash
# sessions32.sh - 32 iSCSI sessions at once.
#
# 32 qemu-io processes (qemu's libiscsi client), each with its own initiator name, log in at the
# same time; each writes its own 1 MiB region (region i at i MiB) with its own byte pattern,
# holds its session open for a few seconds (qemu-io 'sleep') so that all 32 are logged in
# together - counted with ss on the target's port - and reads the region back checking the
# pattern. All 32 must succeed. Then one more session re-reads all 32 regions (no session wrote
# into another's region) and the target must still answer INQUIRY / READ CAPACITY.
# Port 3331. TARGET_IMPL=tgtd runs it against tgtd.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
it_init sessions32
need_cmd qemu-io qemu-utils qemu-block-extra || exit 2
N=32
start_target 3331 || exit 2

img() {  # img INITIATOR_SUFFIX
  echo "json:{\"driver\":\"raw\",\"file\":{\"driver\":\"iscsi\",\"transport\":\"tcp\",\"portal\":\"$T_PORTAL\",\"target\":\"$T_IQN\",\"lun\":$T_LUN,\"initiator-name\":\"iqn.2026-01.org.freevsa:s32-$1\"}}"
}

pids=()
for ((i = 1; i <= N; i++)); do
  off=$(( i * 1048576 ))
  timeout 90 qemu-io -f raw \
    -c "write -P $i $off 1M" -c "sleep 4000" -c "read -P $i $off 1M" \
    "$(img "$i")" >"$IT_TMP/client-$i.out" 2>&1 &
  pids+=($!)
done
# while they sleep, count the established connections on the target's port (bounded: 6 s)
maxconn=0
for _ in $(seq 30); do
  c=$(ss -Htn state established "( sport = :$T_PORT )" 2>/dev/null | wc -l)
  [ "$c" -gt "$maxconn" ] && maxconn=$c
  [ "$maxconn" -ge $N ] && break
  sleep 0.2
done
[ "$maxconn" -ge $N ] && ok "$maxconn sessions logged in at the same time" ||
  bad "only $maxconn connections open at once (wanted $N)"

failed=0
for ((i = 1; i <= N; i++)); do
  rc=0; wait "${pids[$((i - 1))]}" || rc=$?
  o=$IT_TMP/client-$i.out
  if [ $rc -ne 0 ] || grep -qiE 'fail|error|verification' "$o" ||
     [ "$(grep -c 'wrote 1048576/1048576\|read 1048576/1048576' "$o")" -ne 2 ]; then
    failed=$((failed + 1))
    echo "client $i (exit $rc):"; sed 's/^/    /' "$o" | head -5
  fi
done
[ $failed -eq 0 ] && ok "all $N sessions wrote and read back their own 1 MiB pattern" ||
  bad "$failed of $N sessions failed"

cmds=()
for ((i = 1; i <= N; i++)); do cmds+=(-c "read -P $i $(( i * 1048576 )) 1M"); done
out=$(timeout 60 qemu-io -f raw "${cmds[@]}" "$(img check)" 2>&1); rc=$?
if [ $rc -eq 0 ] && ! echo "$out" | grep -qiE 'fail|error|verification' &&
   [ "$(echo "$out" | grep -c 'read 1048576/1048576')" -eq $N ]; then
  ok "a new session reads all $N regions back with the right patterns"
else
  bad "re-reading the $N regions failed (exit $rc): $(echo "$out" | grep -iE 'fail|error|verification' | head -3)"
fi
check "target still answers after $N sessions" target_alive
stop_target; rc=$?
[ "$T_IMPL" = tgtd ] || { [ $rc -eq 0 ] && ok "target stopped on SIGTERM" || bad "target did not stop cleanly (rc $rc)"; }
it_finish
