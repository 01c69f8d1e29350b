#!/usr/bin/env bash
# From a fresh Debian 12 machine to a running freevsa cluster on this one machine:
# installs the dependencies, builds a Release binary into build/, and runs the two nodes of
# etc/cluster-demo.yaml - a on 127.0.0.1, b on 127.0.0.2, both loopback addresses - in the
# foreground, their log lines prefixed [a] and [b]. The 1 GiB volume vol0 lives in the sparse
# files data/a/vol0.img and data/b/vol0.img; a is its primary. Ctrl-C stops both nodes.
#
#   scripts/quickstart.sh            the two-node cluster (etc/cluster-demo.yaml)
#   scripts/quickstart.sh --single   one unreplicated target instead (etc/freevsa.yaml)
#
#   FREEVSA_JOBS=N       build parallelism (default: number of cores)
#   FREEVSA_SKIP_DEPS=1  do not run scripts/install-deps.sh
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

MODE=cluster
case "${1:-}" in
  "") ;;
  --single) MODE=single ;;
  *) echo "usage: scripts/quickstart.sh [--single]" >&2; exit 2 ;;
esac
JOBS=${FREEVSA_JOBS:-$(nproc)}
FREEVSA=build/daemon/freevsa

if [ "${FREEVSA_SKIP_DEPS:-0}" != 1 ]; then
  echo "==> Installing dependencies"
  bash scripts/install-deps.sh
fi

echo "==> Building (Release) into build/"
gen=(-G Ninja)
[ -f build/CMakeCache.txt ] && gen=()
cmake -S . -B build "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DFREEVSA_SANITIZE=OFF -DFREEVSA_FUZZ=OFF >/dev/null
cmake --build build -j "$JOBS"

if [ "$MODE" = single ]; then
  cat <<'EOF'

==> freevsa is starting in the foreground (Ctrl-C stops it)

    portal  127.0.0.1:3260
    target  iqn.2026-01.org.freevsa:disk0   LUN 0 = data/disk0.img (1 GiB, sparse)

Connect from another terminal:
  iscsi-inq iscsi://127.0.0.1:3260/iqn.2026-01.org.freevsa:disk0/0
  qemu-img info iscsi://127.0.0.1:3260/iqn.2026-01.org.freevsa:disk0/0

EOF
  exec "$FREEVSA" serve --config etc/freevsa.yaml
fi

CONFIG=etc/cluster-demo.yaml
"$FREEVSA" check-config --config "$CONFIG" >/dev/null
for addr in 127.0.0.1 127.0.0.2; do
  for port in 3260 7788 7799; do
    if timeout 1 bash -c "exec 3<>/dev/tcp/$addr/$port" 2>/dev/null; then
      echo "quickstart: $addr:$port is already in use (another freevsa or iSCSI target?); stop it first" >&2
      exit 1
    fi
  done
done

PIDS=()
stop_nodes() {
  trap - INT TERM EXIT
  echo
  echo "==> Stopping both nodes"
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_nodes INT TERM EXIT

echo "==> Starting nodes a (127.0.0.1) and b (127.0.0.2) of $CONFIG"
for node in a b; do
  # The prefixing sed ignores Ctrl-C, so that the nodes' last lines (a clean stop) still show.
  "$FREEVSA" serve --config "$CONFIG" --node "$node" > >(trap '' INT TERM; exec sed -u "s/^/[$node] /") 2>&1 &
  PIDS+=($!)
done

# The first start copies a's replica to b (sparse files: a few seconds); wait for it.
for _ in $(seq 120); do
  status=$("$FREEVSA" status --config "$CONFIG" --node a --json 2>/dev/null || true)
  if python3 -c 'import json,sys; v=json.loads(sys.argv[1])["volumes"][0]; p=v["peers"][0]
sys.exit(0 if v["role"]=="primary" and p["connection"]=="Connected" and p["disk_state"]=="UpToDate" else 1)' "$status" 2>/dev/null; then
    break
  fi
  sleep 0.5
done
"$FREEVSA" status --config "$CONFIG" --node a || true

cat <<'EOF'

==> The cluster runs in the foreground (Ctrl-C stops both nodes)

    target  iqn.2026-01.org.freevsa:vol0, LUN 0: the replicated 1 GiB volume vol0
    node a  portal 127.0.0.1:3260   primary: serves I/O
    node b  portal 127.0.0.2:3260   standby: answers "target port in standby state" (ALUA)

From another terminal:
  build/daemon/freevsa status --config etc/cluster-demo.yaml --node a      # --json for scripts
  qemu-img convert -p -n -O raw some-image.raw iscsi://127.0.0.1:3260/iqn.2026-01.org.freevsa:vol0/0
  iscsi-inq iscsi://127.0.0.1:3260/iqn.2026-01.org.freevsa:vol0/0

  # switch roles by hand
  build/daemon/freevsa demote  vol0 --config etc/cluster-demo.yaml --node a
  build/daemon/freevsa promote vol0 --config etc/cluster-demo.yaml --node b

  # compare the replicas online
  build/daemon/freevsa verify vol0 --config etc/cluster-demo.yaml --node a

EOF
wait
