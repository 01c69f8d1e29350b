#!/usr/bin/env bash
# From a fresh Debian 12 machine to a running freevsa target:
# installs the dependencies, builds a Release binary into build/, prints how
# to connect, and runs the daemon in the foreground with etc/freevsa.yaml
# (Ctrl-C stops it).
#
#   FREEVSA_JOBS=N   build parallelism (default: number of cores)
#   FREEVSA_SKIP_DEPS=1  do not run scripts/install-deps.sh
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

CONFIG=etc/freevsa.yaml
JOBS=${FREEVSA_JOBS:-$(nproc)}

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

if [ ! -f "$CONFIG" ]; then
  echo "quickstart: $CONFIG not found" >&2
  exit 1
fi

cat <<'EOF'

==> freevsa is starting in the foreground (Ctrl-C stops it)

    portal  127.0.0.1:3260
    target  iqn.2026-01.org.freevsa:disk0   LUN 0 = data/disk0.img (1 GiB, sparse)

Connect from another terminal:

  # libiscsi tools (package libiscsi-bin)
  iscsi-ls -s iscsi://127.0.0.1:3260
  iscsi-inq iscsi://127.0.0.1:3260/iqn.2026-01.org.freevsa:disk0/0

  # qemu-img (packages qemu-utils qemu-block-extra)
  qemu-img info iscsi://127.0.0.1:3260/iqn.2026-01.org.freevsa:disk0/0
  qemu-img convert -p -O raw some-image.qcow2 iscsi://127.0.0.1:3260/iqn.2026-01.org.freevsa:disk0/0

  # Linux kernel initiator (package open-iscsi)
  iscsiadm -m discovery -t sendtargets -p 127.0.0.1:3260
  iscsiadm -m node -T iqn.2026-01.org.freevsa:disk0 -p 127.0.0.1:3260 --login
  lsblk            # the LUN shows up as a new /dev/sdX
  iscsiadm -m node -T iqn.2026-01.org.freevsa:disk0 -p 127.0.0.1:3260 --logout

EOF

exec build/daemon/freevsa serve --config "$CONFIG"
