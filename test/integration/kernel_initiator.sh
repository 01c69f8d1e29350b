#!/usr/bin/env bash
# timeout: 900
# kernel_initiator.sh - the real Linux kernel iSCSI initiator (open-iscsi + iscsi_tcp) in a small
# QEMU guest against our target.
#
# Builds the guest once (test/kvm/guest_initiator.sh build: debootstrap'ed bookworm rootfs with
# open-iscsi and fio, Debian's kernel via apt-get download) into KVM_GUEST_CACHE (default
# build/kvm-guest), rebuilding it when guest_initiator.sh is newer than the cached initrd. Then
# starts the target on 127.0.0.1:3351 with a 1 GiB LUN and boots the guest with
# PORTAL=10.0.2.2:3351 (QEMU user networking maps 10.0.2.2 to the host's loopback). The guest:
# sendtargets discovery, login, 32 MiB O_DIRECT dd write/read with sha256, fio sequential and
# random writes with crc32c verify, mkfs.ext4 + file + remount + e2fsck, logout, re-login and
# file check; PASS only if the guest prints ISCSI-GUEST-RESULT: PASS and the kernel logged no
# iSCSI/SCSI errors. The target must still answer afterwards and stop on SIGTERM.
# Here /dev/kvm is kvm_pvm, so the guest runs under TCG. Measured (2 cores): build 54 s (with
# the Debian mirror reachable), guest run against tgtd 37 s. The header above gives the runner
# 900 s for a fresh build plus the run. Port 3351. TARGET_IMPL=tgtd runs it against tgtd.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
it_init kernel_initiator
GUEST=$REPO_ROOT/test/kvm/guest_initiator.sh
export WORK=${KVM_GUEST_CACHE:-$REPO_ROOT/build/kvm-guest}

if [ ! -f "$WORK/initrd.img" ] || [ ! -f "$WORK/vmlinuz" ] || [ "$GUEST" -nt "$WORK/initrd.img" ]; then
  log "building the guest into $WORK (debootstrap + kernel download on the first run)"
  t0=$SECONDS
  if timeout 700 bash "$GUEST" build; then ok "guest built in $((SECONDS - t0)) s"
  else bad "guest build failed"; it_finish; fi
fi

LUN_SIZE=1G start_target 3351 || exit 2
t0=$SECONDS
if PORTAL=10.0.2.2:$T_PORT TARGET_IQN=$T_IQN TIMEOUT=${GUEST_TIMEOUT:-600} bash "$GUEST" run >"$IT_TMP/guest.out" 2>&1; then
  ok "kernel initiator guest passed in $((SECONDS - t0)) s"
else
  bad "kernel initiator guest failed after $((SECONDS - t0)) s"
fi
grep -a -E '^GUEST\[|^ISCSI-GUEST-RESULT|^SESSION:|FAIL' "$IT_TMP/guest.out" | tr -d '\r' | sed 's/^/  /'
if grep -aq 'ISCSI-KERNEL-ERROR-LINES: 0' "$IT_TMP/guest.out"; then ok "guest kernel logged no iSCSI/SCSI errors"
else bad "guest kernel logged iSCSI/SCSI errors:"; grep -a '^KMSG' "$IT_TMP/guest.out" | tail -20; fi
check "target still answers after the guest" target_alive
stop_target; rc=$?
[ "$T_IMPL" = tgtd ] || { [ $rc -eq 0 ] && ok "target stopped on SIGTERM" || bad "target did not stop cleanly (rc $rc)"; }
it_finish
