#!/usr/bin/env bash
# discovery_inquiry.sh - SendTargets discovery and INQUIRY data, with libiscsi's own tools.
#
#  - iscsi-ls -s (discovery session + login to list LUNs) shows the target, its portal and the LUN
#    as a DIRECT_ACCESS device; iscsi-ls --url gives an iscsi:// URL for the target
#  - iscsi-inq: standard INQUIRY (direct-access device, vendor/product present), and the VPD
#    pages 0x00 (which must list 0x80 0x83 0xB0 0xB1 0xB2), 0x80 (unit serial number),
#    0x83 (device identification: an NAA designator for the LU), 0xB0 (block limits),
#    0xB1 (block device characteristics), 0xB2 (logical block provisioning)
#  - the serial number and the NAA identifier (raw designator bytes, read with pyiscsi because
#    iscsi-inq prints NAA designators as raw bytes) are the same after restarting the target on
#    the same config and LUN file
# Port 3321. TARGET_IMPL=tgtd runs it against tgtd.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
it_init discovery_inquiry
start_target 3321 || exit 2
INQ="timeout 30 iscsi-inq -i $INITIATOR_IQN"

out=$(timeout 30 iscsi-ls -i "$INITIATOR_IQN" -s "iscsi://$T_PORTAL" 2>&1); rc=$?
echo "$out" | sed 's/^/  iscsi-ls: /'
[ $rc -eq 0 ] && ok "iscsi-ls -s exits 0" || bad "iscsi-ls -s failed (exit $rc)"
echo "$out" | grep -q "^Target:$T_IQN Portal:$T_PORTAL," && ok "iscsi-ls lists $T_IQN at $T_PORTAL" ||
  bad "iscsi-ls does not list Target:$T_IQN Portal:$T_PORTAL"
echo "$out" | grep -Eq "^Lun:$T_LUN +Type:DIRECT_ACCESS" && ok "iscsi-ls shows LUN $T_LUN as DIRECT_ACCESS" ||
  bad "iscsi-ls does not show LUN $T_LUN as DIRECT_ACCESS"
out=$(timeout 30 iscsi-ls -i "$INITIATOR_IQN" --url "iscsi://$T_PORTAL" 2>&1)
echo "$out" | grep -q "^iscsi://$T_PORTAL/$T_IQN/" && ok "iscsi-ls --url gives iscsi://$T_PORTAL/$T_IQN/..." ||
  bad "iscsi-ls --url output lacks the target URL: $out"

out=$($INQ "$T_URL" 2>&1); rc=$?
[ $rc -eq 0 ] && ok "standard INQUIRY answered" || bad "standard INQUIRY failed (exit $rc): $out"
echo "$out" | grep -q '^Peripheral Device Type:DIRECT_ACCESS' && ok "standard INQUIRY: direct-access block device" ||
  bad "standard INQUIRY: not DIRECT_ACCESS"
echo "$out" | grep -Eq '^Vendor:.*[^ ]' && echo "$out" | grep -Eq '^Product:.*[^ ]' &&
  ok "standard INQUIRY: $(echo "$out" | grep -E '^(Vendor|Product|Revision):' | tr -s ' ' | tr '\n' ' ')" ||
  bad "standard INQUIRY: vendor or product missing"

out=$($INQ -e 1 -c 0 "$T_URL" 2>&1); rc=$?
[ $rc -eq 0 ] && ok "VPD 0x00 answered" || bad "VPD 0x00 failed (exit $rc)"
for p in 0x80 0x83 0xb0 0xb1 0xb2; do
  echo "$out" | grep -q "^Page:$p " && ok "VPD 0x00 lists page $p" || bad "VPD 0x00 does not list page $p"
done
for p in 128 131 176 177 178; do   # iscsi-inq -c takes a decimal page code
  hex=$(printf '0x%02x' $p)
  o=$($INQ -e 1 -c $p "$T_URL" 2>&1); rc=$?
  if [ $rc -eq 0 ] && [ -n "$o" ] && ! echo "$o" | grep -qi 'fail\|error'; then
    ok "VPD $hex answered: $(echo "$o" | tr -d '\0' | grep -a -v '^Peripheral' | head -2 | tr '\n' ' ' | cut -c1-100)"
  else
    bad "VPD $hex failed (exit $rc): $o"
  fi
done

serial() { $INQ -e 1 -c 128 "$T_URL" 2>/dev/null | sed -n 's/^Unit Serial Number:\[ *\(.*\)\]$/\1/p'; }
naa() { timeout 30 pyiscsi vpd --page 0x83 --portal "$T_PORTAL" --target "$T_IQN" --lun "$T_LUN" | awk '$2=="type=3" && $3=="assoc=0" {print $5}'; }
S1=$(serial); N1=$(naa)
[ -n "$S1" ] && ok "unit serial number: $S1" || bad "no unit serial number in VPD 0x80"
[ -n "$N1" ] && ok "NAA designator of the LU: $(echo $N1)" || bad "no NAA designator (type 3, association LU) in VPD 0x83"
case $(echo "$N1" | head -1 | cut -c1) in
  2|3|5|6) ok "NAA designator has a valid NAA field ($(echo "$N1" | head -1 | cut -c1))" ;;
  *) bad "NAA designator's first nibble is not 2, 3, 5 or 6" ;;
esac

restart_target || { bad "target did not restart"; it_finish; }
S2=$(serial); N2=$(naa)
[ -n "$S1" ] && [ "$S1" = "$S2" ] && ok "serial number unchanged after restart" ||
  bad "serial number changed after restart: '$S1' -> '$S2'"
[ -n "$N1" ] && [ "$N1" = "$N2" ] && ok "NAA identifier unchanged after restart" ||
  bad "NAA identifier changed after restart: '$(echo $N1)' -> '$(echo $N2)'"
check "target still answers" target_alive
it_finish
