#!/usr/bin/env bash
# replication_peer_attacks.sh - a host on the replication network that holds no secret gets
# nothing out of port 7788: no trust, no information about a volume, no way to drop a live link.
# timeout: 300
#
# The attacker (test/tools/peer_adversary.py) connects from 127.0.0.9, so the nodes' logs tell
# it apart from the real peers. Against a connected pair, with a verified writer on the primary:
#  - the relay attack on the first protocol (pass b's challenge to a and a's answer back): b
#    must not accept it;
#  - a relay of the current handshake, each connection claiming the other node: neither node
#    sends a proof to an unauthenticated peer, both refuse with a log line naming the cause;
#  - a rogue Hello every 100 ms for 10 s: the link stays Connected, nothing out of sync, writes
#    replicated;
#  - 100 idle sockets on the peer port: all closed within 20 s (deadline 5 s).
# A replayed handshake and frames altered or injected after it are unit tests
# (replication_link_auth_test.cpp: a man in the middle between two real links).
# Throughout: the link is never replaced by the attacker's connection, and every write the
# writer saw acknowledged is on both disks at the end.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/lib_cluster.sh"
it_init replication_peer_attacks
need_cmd qemu-io qemu-utils qemu-block-extra || exit 2
cluster_init 4560 || exit 2

ADV=(timeout 60 python3 "$HERE/../tools/peer_adversary.py" --source 127.0.0.9)
A=127.0.0.1:$C_REPL_PORT
B=127.0.0.2:$C_REPL_PORT
JOURNAL=$IT_TMP/journal

cluster_config a
cluster_config b
node_start a && node_start b || exit 2
check "in sync" wait_in_sync 60
writer_start --portal "$(portal a)" --target "$C_IQN" --offset 0 --size 64M --depth 4 --seconds 120 --io-timeout 10
wait_for_acks 50 30 || bad "the writer got no acknowledgements"

connected_to_attacker() { grep -E "connected to [ab] \(127\.0\.0\.9" "$IT_TMP/$1.log"; }

echo "--- relay attack on the first protocol"
out=$("${ADV[@]}" relay-v1 "$A" "$B" 2>&1); echo "$out" | sed 's/^/  /'
check "relay-v1: b does not accept the relayed answer" not grep -q "ACCEPTED" <<<"$out"
check "relay-v1: a gave an unauthenticated peer no Hello" not grep -q "sent its Hello" <<<"$out"
check "relay-v1: a logs why it refused" wait_log a "127\.0\.0\.9.*(older protocol|before authenticat)" 10

echo "--- relay of the current handshake"
out=$("${ADV[@]}" relay "$A" "$B" --duration 3 2>&1); echo "$out" | sed 's/^/  /'
check "relay: no node sent a proof to the relay" not grep -q "SENT A PROOF" <<<"$out"
check "relay: both connections closed after a junk proof" not grep -q "KEPT" <<<"$out"
check "relay: a logs the failed authentication" wait_log a "127\.0\.0\.9.*(failed authentication|authentication)" 10
check "relay: b logs the failed authentication" wait_log b "127\.0\.0\.9.*(failed authentication|authentication)" 10

echo "--- rogue Hellos every 100 ms for 10 s"
out=$("${ADV[@]}" rogue-hello "$B" --interval 0.1 --duration 10 2>&1); echo "$out" | sed 's/^/  /'
check "rogue Hellos: the link is still Connected" wait_for b "p['connection']" Connected 5
check "rogue Hellos: a never lost the link" not grep -q "lost the connection" "$IT_TMP/a.log"
check "rogue Hellos: nothing out of sync" [ "$(status_field a "v['out_of_sync_bytes']")" = 0 ]

echo "--- 100 idle sockets"
out=$("${ADV[@]}" idle "$B" --count 100 --duration 20 2>&1); echo "$out" | sed 's/^/  /'
check "idle: all 100 closed within 20 s" grep -q "idle: 100 of 100 closed" <<<"$out"

for n in a b; do
  check "$n: never connected to the attacker" not connected_to_attacker "$n"
done
check "the link is Connected after the attacks" wait_for a "p['connection']" Connected 10
a_acks=$(acks)
wait_for_acks $((a_acks + 50)) 30 || bad "writes stopped after the attacks"
writer_stop || bad "the writer failed"
wait_in_sync 30 || bad "not in sync after the attacks"
offline_checks
it_finish
