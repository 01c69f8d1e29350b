#!/usr/bin/env bash
# target_bounds.sh - what one initiator (or anyone who reaches the portal) can make the target
# hold is bounded: connections, Data-Out buffers and per-initiator-port state.
#
# One freevsa under `ulimit -n 1024` (fewer descriptors than the sockets opened at it), with a
# short Data-Out timeout, probed by test/tools/bounds_probe.py:
#   1. 512 WRITEs of 64 MiB, each with its last burst withheld: the target asks for no more
#      Data-Out than its per-connection bound (the rest get TASK SET FULL), its RSS stays under
#      that bound, another session writes and reads meanwhile, and the stalled writes end with
#      CHECK CONDITION 0B/4B/06 at the timeout, freeing their buffers.
#   2. 1,100 idle TCP connections from 11 loopback addresses: the target runs out of
#      descriptors and backs off instead of spinning (CPU over 5 s idle stays low, few log
#      lines), a live session's QD1 latency stays within 2x, and every accepted connection that
#      never logs in is closed at the 15 s login deadline.
#   3. 140 connections from one address: those beyond the per-address cap (128) are closed.
#   4. Logins with random ISIDs for up to 60 s (100,000 at most): the unit-attention state the
#      LUN keeps stays bounded (the debug line at the end of every I_T nexus counts it), and a
#      persistent reservation key registered before is still there.
# Port 4371.
# timeout: 240
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
it_init target_bounds
PORT=4371
DATA_OUT_TIMEOUT=${DATA_OUT_TIMEOUT:-5}
CHURN_SECONDS=${CHURN_SECONDS:-60}
cp "$REPO_ROOT/test/tools/bounds_probe.py" "$IT_TMP/bin/"
probe() { timeout 150 python3 "$IT_TMP/bin/bounds_probe.py" "$@" --portal 127.0.0.1:$PORT; }

# The daemon gets 1024 descriptors and no more (soft and hard), as under a default systemd unit.
REAL_FREEVSA=$FREEVSA
FREEVSA=$IT_TMP/bin/freevsa-1024
printf '#!/bin/sh\nulimit -n 1024 || exit 2\nexec "%s" "$@"\n' "$REAL_FREEVSA" >"$FREEVSA"
chmod +x "$FREEVSA"
FREEVSA_LOG_LEVEL=debug \
FREEVSA_EXTRA_CONFIG=${BOUNDS_EXTRA_CONFIG-"limits: {data_out_timeout_seconds: $DATA_OUT_TIMEOUT}"} \
  start_target $PORT || exit 2
[ "$(awk '/Max open files/ {print $4}' /proc/"$T_PID"/limits)" = 1024 ] &&
  ok "the target runs with 1024 descriptors" || bad "the descriptor limit did not apply"

# ---- 1. withheld Data-Out
out=$(probe withhold --target "$T_IQN" --pid "$T_PID" --wait $((DATA_OUT_TIMEOUT + 10))); echo "withhold: $out"
base=$(field base_rss_mib "$out") peak=$(field peak_rss_mib "$out") after=$(field after_rss_mib "$out")
[ -n "$peak" ] && [ $((peak - base)) -le $((256 + 32)) ] &&
  ok "RSS grew by $((peak - base)) MiB (per-connection bound 256 MiB)" ||
  bad "RSS grew from ${base:-?} to ${peak:-?} MiB with the last bursts withheld"
[ "$(field task_set_full "$out")" -gt 0 ] 2>/dev/null &&
  ok "$(field task_set_full "$out") writes beyond the bound got TASK SET FULL" ||
  bad "no write was refused with TASK SET FULL"
[ "$(field other_session_served "$out")" = 1 ] && ok "another session wrote and read 1 MiB meanwhile" ||
  bad "another session was not served while the writes waited"
[ "$(field still_waiting "$out")" = 0 ] && [ "$(field timed_out "$out")" -gt 0 ] 2>/dev/null &&
  ok "the $(field timed_out "$out") stalled writes ended with 0B/4B/06 after ${DATA_OUT_TIMEOUT} s" ||
  bad "stalled writes did not time out ($(field still_waiting "$out") still waiting)"
[ -n "$after" ] && [ $((after - base)) -le 32 ] && ok "their buffers were freed (RSS $after MiB)" ||
  bad "RSS stayed at ${after:-?} MiB after the timeout (base ${base:-?})"
[ "$(field write_after "$out")" = 0 ] && ok "the session writes again afterwards" ||
  bad "a write after the timeout failed (status $(field write_after "$out"))"

# ---- 2. descriptor exhaustion and the login deadline
lines_before=$(grep -c 'accept' "$T_LOG")
out=$(probe flood --target "$T_IQN" --pid "$T_PID" --sockets 1100 --sources 11); echo "flood: $out"
before=$(field latency_before_us "$out") during=$(field latency_during_us "$out")
[ -n "$during" ] && [ "$during" -le $((2 * before)) ] &&
  ok "QD1 latency ${before} us before, ${during} us with 1,100 idle sockets" ||
  bad "QD1 latency went from ${before:-?} to ${during:-?} us"
cpu=$(field cpu_fraction "$out")
[ -n "$cpu" ] && awk -v c="$cpu" 'BEGIN { exit !(c < 0.05) }' &&
  ok "the target used $cpu of a core while out of descriptors" ||
  bad "the target used ${cpu:-?} of a core while out of descriptors (spinning)"
log_lines=$(( $(grep -c 'accept' "$T_LOG") - lines_before ))
[ "$log_lines" -le 5 ] && ok "$log_lines log lines about accepting" ||
  bad "$log_lines log lines about accepting (the log is flooded)"
log_has 'out of file descriptors|too many open files' && ok "the log names the cause" ||
  bad "no log line names the descriptor shortage"
opened=$(field opened "$out")
[ "$(field closed_before_deadline "$out")" = 0 ] && [ "$(field closed_by_deadline "$out")" -ge 900 ] 2>/dev/null &&
  ok "$(field closed_by_deadline "$out") of $opened connections that never logged in were closed at 15 s" ||
  bad "login deadline: $(field closed_before_deadline "$out") closed early, $(field closed_by_deadline "$out") by 18 s"

# ---- 3. per-address cap
out=$(probe address --source 127.0.78.1 --sockets 140); echo "address: $out"
[ "$(field closed_by_target "$out")" = 12 ] && ok "12 connections beyond 128 from one address were refused" ||
  bad "per-address cap: $(field closed_by_target "$out") of 140 closed (wanted 12)"
log_has 'refus.*127\.0\.78\.1' && ok "the refusal is logged with the address" || bad "no log line for the refusal"

# ---- 4. random ISIDs
out=$(probe churn --target "$T_IQN" --seconds "$CHURN_SECONDS"); echo "churn: $out"
logins=$(field logins "$out")
[ "${logins:-0}" -ge 5000 ] && ok "$logins logins with random ISIDs" || bad "only ${logins:-0} logins"
ports=$(grep -oE 'state for [0-9]+ initiator ports' "$T_LOG" | awk '{print $3}' | sort -n | tail -1)
[ -n "$ports" ] && [ "$ports" -le 8 ] && ok "the LUN kept state for at most $ports initiator ports" ||
  bad "the LUN's per-initiator state grew to ${ports:-?} ports"
[ "$(field key_kept "$out")" = 1 ] && ok "the persistent reservation key survived" ||
  bad "the persistent reservation key registered before was lost"

check "target still answers" target_alive
stop_target; rc=$?
[ $rc -eq 0 ] && ok "target stopped on SIGTERM" || bad "target did not stop cleanly (rc $rc)"
it_finish
