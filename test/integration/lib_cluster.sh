# shellcheck shell=bash
# Helpers for the two-node replication tests: a cluster of node a (127.0.0.1) and node b
# (127.0.0.2), both loopback addresses of this machine, each a real freevsa process. Source
# lib.sh first, then this file.
#
#   cluster_init BASEPORT          ports BASEPORT (iSCSI), +1 (replication), +2 (control) on
#                                  both addresses; files under $IT_TMP/data/{a,b}
#   cluster_config NODE [KEY=VALUE...]  writes $IT_TMP/NODE.yaml, the file NODE runs with;
#                                  keys: SIZE PROTOCOL SECRET CLUSTER RESYNC_RATE CHECKSUM
#                                  VERIFY_RATE BLOCK PING_INTERVAL PEER_TIMEOUT (defaults below),
#                                  TLS=DIR (TLS on the peer link with DIR/ca.crt and
#                                  DIR/{a,b}.{crt,key}) or TLS=psk (TLS 1.3, key from the secret), METADATA=external (metadata in
#                                  data/NODE/vol0.meta instead of the backing file), DIRECT_IO
#                                  NETWORK_THREADS WORKER_THREADS (unset: the daemon's defaults),
#                                  CLUSTER_YAML / VOLUME_YAML / TOP_YAML (lines added verbatim
#                                  inside `cluster:` (2-space indent), inside the volume (4) and
#                                  at the top level (0), e.g. chap, iscsi_access, discovery_chap).
#                                  Both nodes normally get the same values; tests of mismatches
#                                  give one node others.
#   node_start NODE                serve NODE in the background (log $IT_TMP/NODE.log); with
#                                  FSIZE_LIMIT_KB set, under `ulimit -f` (writes past that offset
#                                  of any file fail with EFBIG: a disk that fails there); returns
#                                  once NODE's control endpoint answers
#   node_spawn NODE                node_start without that wait, for timing a node from the
#                                  moment its process starts
#   node_kill NODE                 SIGKILL, reaped
#   node_stop NODE                 SIGTERM; returns 1 if it had to be killed
#   node_cmd NODE CMD [ARGS...]    freevsa CMD ARGS --config NODE.yaml --node NODE
#   status_field NODE EXPR         a field of NODE's `status --json`, EXPR a python expression
#                                  over v (the volume) and p (its peer), e.g. "p['connection']"
#   wait_for NODE EXPR VALUE SECS  until status_field prints VALUE
#   wait_in_sync SECS              both nodes see each other Connected, both UpToDate, nothing
#                                  out of sync, one primary
#   replicas_identical             the data areas of both backing files are bit-identical
#   verify_through NODE WHAT       the verified writer's journal $JOURNAL reads back through NODE
#                                  (a PASS/FAIL line; writers must be stopped)
#   offline_checks                 stops both nodes; their data areas are identical and hold every
#                                  write $JOURNAL says was acknowledged
#   node_log_has NODE REGEX
#   iscsi_url NODE / portal NODE   where initiators reach NODE's LUN
# Variables: C_IQN (target), C_SIZE_BYTES, C_DATA_BYTES (compare size), NODE_PID_a, NODE_PID_b.
# Requires: lib.sh's it_init (IT_TMP, cleanup), python3.
set -u

C_IQN=iqn.2026-01.org.freevsa:itvol
C_VOLUME=vol0
declare -A NODE_ADDR=([a]=127.0.0.1 [b]=127.0.0.2)
declare -A NODE_PID=()

cluster_init() {
  C_ISCSI_PORT=$1
  C_REPL_PORT=$(($1 + 1))
  C_CTL_PORT=$(($1 + 2))
  mkdir -p "$IT_TMP/data/a" "$IT_TMP/data/b"
  local n p
  for n in a b; do
    for p in $C_ISCSI_PORT $C_REPL_PORT $C_CTL_PORT; do
      if timeout 1 bash -c "exec 3<>/dev/tcp/${NODE_ADDR[$n]}/$p" 2>/dev/null; then
        echo "${NODE_ADDR[$n]}:$p is in use by another process; cannot run the cluster test there" >&2
        return 2
      fi
    done
  done
}

cluster_config() {  # cluster_config NODE [KEY=VALUE...]
  local node=$1; shift
  local SIZE=256M PROTOCOL=C SECRET=integration-test-secret-0123456789 CLUSTER=itcluster
  local RESYNC_RATE=adaptive CHECKSUM=false VERIFY_RATE=200M BLOCK=512 TLS= METADATA=internal kv tls=
  local PING_INTERVAL=200ms PEER_TIMEOUT=1s DIRECT_IO='' NETWORK_THREADS='' WORKER_THREADS=''
  local CLUSTER_YAML='' VOLUME_YAML='' TOP_YAML=''
  for kv in "$@"; do
    case ${kv%%=*} in
    SIZE | PROTOCOL | SECRET | CLUSTER | RESYNC_RATE | CHECKSUM | VERIFY_RATE | BLOCK | TLS | METADATA | \
      PING_INTERVAL | PEER_TIMEOUT | DIRECT_IO | NETWORK_THREADS | WORKER_THREADS | CLUSTER_YAML | VOLUME_YAML | \
      TOP_YAML) local "$kv" ;;
    *) echo "cluster_config: unknown setting $kv" >&2; return 2 ;;
    esac
  done
  [ "$TLS" = psk ] && tls="
  tls: psk"
  [ -n "$TLS" ] && [ "$TLS" != psk ] && tls="
  tls:
    cert: {a: $TLS/a.crt, b: $TLS/b.crt}
    key: {a: $TLS/a.key, b: $TLS/b.key}
    ca: $TLS/ca.crt"
  C_SIZE_BYTES=$(numfmt --from=iec "$SIZE")
  C_DATA_BYTES=$C_SIZE_BYTES
  cat >"$IT_TMP/$node.yaml" <<EOF
# generated by test/integration/lib_cluster.sh for $IT_NAME (node $node)
cluster:
  name: $CLUSTER
  secret: $SECRET
  initial_primary: a
  keepalive: {ping_interval: $PING_INTERVAL, timeout: $PEER_TIMEOUT}$tls${CLUSTER_YAML:+
$CLUSTER_YAML}
nodes:
  - name: a
    id: 1
    replication: ${NODE_ADDR[a]}:$C_REPL_PORT
    control: ${NODE_ADDR[a]}:$C_CTL_PORT
    portals: ["${NODE_ADDR[a]}:$C_ISCSI_PORT"]
  - name: b
    id: 2
    replication: ${NODE_ADDR[b]}:$C_REPL_PORT
    control: ${NODE_ADDR[b]}:$C_CTL_PORT
    portals: ["${NODE_ADDR[b]}:$C_ISCSI_PORT"]
volumes:
  - name: $C_VOLUME
    size: $SIZE
    block_size: $BLOCK${DIRECT_IO:+
    direct_io: $DIRECT_IO}
    protocol: $PROTOCOL
    target: $C_IQN
    lun: 0
    backing: {a: data/a/$C_VOLUME.img, b: data/b/$C_VOLUME.img}
    metadata: $([ "$METADATA" = external ] && echo "{a: data/a/$C_VOLUME.meta, b: data/b/$C_VOLUME.meta}" || echo internal)
    resync: {rate: $RESYNC_RATE, checksum: $CHECKSUM}
    verify: {rate: $VERIFY_RATE}${VOLUME_YAML:+
$VOLUME_YAML}
iscsi: {max_recv_data_segment_length: 262144}${TOP_YAML:+
$TOP_YAML}
log_level: ${FREEVSA_LOG_LEVEL:-info}${NETWORK_THREADS:+
network_threads: $NETWORK_THREADS}${WORKER_THREADS:+
worker_threads: $WORKER_THREADS}
EOF
}

backing_file() { echo "$IT_TMP/data/$1/$C_VOLUME.img"; }
portal() { echo "${NODE_ADDR[$1]}:$C_ISCSI_PORT"; }
iscsi_url() { echo "iscsi://$(portal "$1")/$C_IQN/0"; }

node_spawn() {  # node_spawn NODE : node_start without waiting for the control endpoint
  local node=$1
  (
    cd "$IT_TMP" || exit 2
    if [ -n "${FSIZE_LIMIT_KB:-}" ]; then ulimit -f "$FSIZE_LIMIT_KB" || exit 2; fi
    exec "$FREEVSA" serve --config "$node.yaml" --node "$node" >>"$IT_TMP/$node.log" 2>&1
  ) &
  NODE_PID[$node]=$!
  IT_PIDS+=("freevsa:${NODE_PID[$node]}:$node")
}

node_start() {  # node_start NODE
  local node=$1
  node_spawn "$node"
  if ! wait_port "${NODE_ADDR[$node]}" "$C_CTL_PORT" 20; then
    echo "node $node did not open its control endpoint within 20 s; log:" >&2
    tail -20 "$IT_TMP/$node.log" >&2
    return 2
  fi
  log "node $node: pid ${NODE_PID[$node]}, log $IT_TMP/$node.log"
}

_forget_node() {
  local keep=() e
  for e in "${IT_PIDS[@]}"; do [ "${e##*:}" = "$1" ] || keep+=("$e"); done
  IT_PIDS=("${keep[@]}")
  NODE_PID[$1]=
}

node_kill() {  # node_kill NODE : SIGKILL, as a crash
  local pid=${NODE_PID[$1]}
  { kill -KILL "$pid"; wait "$pid"; } 2>/dev/null
  _forget_node "$1"
  log "node $1: killed (SIGKILL)"
}

node_stop() {  # node_stop NODE : SIGTERM; 1 if it had to be killed after 10 s
  local pid=${NODE_PID[$1]} rc
  _stop_one "freevsa:$pid:$1"; rc=$?
  _forget_node "$1"
  [ $rc -eq 3 ] && rc=0
  return $rc
}

node_alive() { [ -n "${NODE_PID[$1]:-}" ] && kill -0 "${NODE_PID[$1]}" 2>/dev/null; }

node_cmd() {  # node_cmd NODE CMD [ARGS...]
  local node=$1 cmd=$2; shift 2
  (cd "$IT_TMP" && timeout 30 "$FREEVSA" "$cmd" "$@" --config "$node.yaml" --node "$node")
}

status_field() {  # status_field NODE EXPR : EXPR over v (volume) and p (its peer) of status --json
  node_cmd "$1" status --json 2>/dev/null | python3 -c '
import json, sys
try:
    doc = json.load(sys.stdin)
except ValueError:
    sys.exit(1)
v = doc["volumes"][0]
p = v["peers"][0]
r = eval(sys.argv[1])
print(json.dumps(r) if isinstance(r, (dict, list, bool)) or r is None else r)' "$2"
}

wait_for() {  # wait_for NODE EXPR VALUE SECONDS
  local i got
  for ((i = 0; i < $4 * 5; i++)); do
    got=$(status_field "$1" "$2")
    [ "$got" = "$3" ] && return 0
    sleep 0.2
  done
  echo "node $1: $2 is '$got' after $4 s, expected '$3'" >&2
  return 1
}

_in_sync() {
  local n
  for n in a b; do
    [ "$(status_field $n "'%s %s %s %s' % (p['connection'], v['disk_state'], p['disk_state'], v['out_of_sync_bytes'])")" = \
      "Connected UpToDate UpToDate 0" ] || return 1
  done
  [ "$(status_field a "v['role']") $(status_field b "v['role']")" != "secondary secondary" ]
}

wait_in_sync() {  # wait_in_sync SECONDS
  local i
  for ((i = 0; i < $1 * 2; i++)); do
    _in_sync && return 0
    sleep 0.5
  done
  echo "the nodes are not in sync after $1 s:" >&2
  node_cmd a status >&2
  node_cmd b status >&2
  return 1
}

replicas_identical() {  # the data areas (not the per-node metadata) of both backing files
  vw compare "$(backing_file a)" "$(backing_file b)" --size "$C_DATA_BYTES"
}

verify_through() {  # verify_through NODE WHAT : every write of $JOURNAL acknowledged reads back through NODE
  local out rc
  out=$(vw verify --journal "$JOURNAL" --url "$(iscsi_url "$1")" 2>&1); rc=$?
  echo "$out" | sed 's/^/  /'
  [ $rc -eq 0 ] && [ "$(field lost "$out")" = 0 ] && [ "$(field corrupt "$out")" = 0 ] &&
    ok "$2: every acknowledged write reads back through $1 (lost=0 corrupt=0, $(field ok_acked "$out") blocks)" ||
    bad "$2: verify through $1 found lost or corrupt writes (exit $rc)"
}

offline_checks() {  # both nodes stopped on SIGTERM; replicas identical; $JOURNAL on both disks
  local n out rc
  check "a stops on SIGTERM" node_stop a
  check "b stops on SIGTERM" node_stop b
  check "the replicas' data areas are bit-identical" replicas_identical
  for n in a b; do
    out=$(vw verify --journal "$JOURNAL" --file "$(backing_file $n)" 2>&1); rc=$?
    echo "$out" | sed 's/^/  /'
    [ $rc -eq 0 ] && ok "every acknowledged write is on $n's disk (lost=0 corrupt=0)" ||
      bad "$n's disk misses acknowledged writes (exit $rc)"
  done
}

node_log_has() { grep -Eq "$2" "$IT_TMP/$1.log"; }

wait_log() {  # wait_log NODE REGEX SECONDS
  wait_for_log "$IT_TMP/$1.log" "$2" "$3" && return 0
  echo "node $1: no log line matching '$2' within $3 s" >&2
  return 1
}
