#!/usr/bin/env bash
# Install everything needed to build and test freevsa on Debian 12 (bookworm).
#
# Idempotent: packages that are already installed are left alone, and when
# nothing is missing apt is not touched at all (no network needed). Otherwise
# it runs `apt-get update` once and installs only the missing packages.
# Uses sudo only when not run as root.
set -euo pipefail

PACKAGES=(
  # --- Build toolchain --------------------------------------------------
  build-essential       # gcc/g++ 12, make, libc headers (C++20)
  cmake                 # build system (>= 3.20)
  ninja-build           # cmake -G Ninja
  pkg-config            # library discovery

  # --- Libraries freevsa links against ------------------------------------
  libboost-dev          # Boost (header-only parts: asio, ...)
  libssl-dev            # OpenSSL libcrypto (CHAP digests)
  libyaml-cpp-dev       # configuration file parser
  libfmt-dev            # formatting / logging
  liburing-dev          # io_uring for volume I/O

  # --- Unit tests ---------------------------------------------------------
  libgtest-dev          # GoogleTest
  libgmock-dev          # GoogleMock

  # --- Fuzzing and sanitizer builds with clang ----------------------------
  clang                 # clang++ 14 (libFuzzer needs clang)
  libclang-rt-14-dev    # libFuzzer + ASan/UBSan runtimes for clang 14
  llvm                  # llvm-symbolizer: readable sanitizer stack traces

  # --- Integration tests: initiators and tools ----------------------------
  libiscsi-bin          # iscsi-test-cu (conformance), iscsi-ls, iscsi-inq
  libiscsi-dev          # libiscsi headers: test/tools/esxi_replay (ESXi command replay)
  qemu-utils            # qemu-img (with iscsi:// URLs via qemu-block-extra)
  qemu-block-extra      # qemu's libiscsi block driver
  fio                   # I/O load and data verification
  tgt                   # reference iSCSI target for comparison runs
  python3               # helper scripts in tests and benchmarks
  netcat-openbsd        # port probes while waiting for the daemon
  curl                  # requests to the control endpoint (control_auth.sh)
  tcpdump               # captures on loopback: login negotiation (digests), the peer link (TLS)
  openssl               # test certificates for TLS on the peer link

  # --- Kernel-initiator test in a guest VM ---------------------------------
  qemu-system-x86       # runs the guest (KVM when available)
  debootstrap           # builds the guest's root file system
  debian-archive-keyring # lets debootstrap verify the archive
  gnupg                 # signature checks for debootstrap
  cpio                  # packs the guest initramfs
  kmod                  # modprobe/depmod for iscsi_tcp in the guest
  zstd                  # decompresses kernel modules
)

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "install-deps: not root and sudo is not available" >&2
    exit 1
  fi
fi

is_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for p in "${PACKAGES[@]}"; do
  is_installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

tgt_was_installed=0
is_installed tgt && tgt_was_installed=1

echo "install-deps: installing ${#missing[@]} package(s): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  "${missing[@]}" >/dev/null

# On a systemd host, installing tgt starts tgtd on port 3260, the port
# freevsa serves on. The tests start tgtd themselves on other ports, so stop
# the service again - but only if this script is what installed it.
if [ "$tgt_was_installed" -eq 0 ] && [ -d /run/systemd/system ] \
   && command -v systemctl >/dev/null 2>&1; then
  "${SUDO[@]}" systemctl disable --now tgt.service >/dev/null 2>&1 || true
fi

for p in "${PACKAGES[@]}"; do
  if ! is_installed "$p"; then
    echo "install-deps: $p is still not installed" >&2
    exit 1
  fi
done
echo "install-deps: done"
