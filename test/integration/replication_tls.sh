#!/usr/bin/env bash
# replication_tls.sh - TLS on the peer link: encrypted, mutually verified, bound to node names.
# timeout: 300
#
# With `tls: psk` (TLS 1.3, key derived from the cluster secret, no certificates) the nodes
# connect over TLSv1.3, the data is not visible on the link, and a node with another secret
# fails the TLS handshake. Then a test CA signs a certificate for each node
# (subjectAltName DNS:a / DNS:b), and:
#  - with cluster.tls on both nodes they connect over TLS 1.2+, sync, and replicate; a 4 KiB
#    text pattern written through a's portal is captured (tcpdump on the replication port) on
#    the link in plain TCP (the control) but never with TLS;
#  - a node whose certificate another CA signed is refused in the TLS handshake;
#  - a node whose certificate names another node is refused after the handshake;
#  - a missing certificate file stops `freevsa serve` with an error that names the file.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/lib_cluster.sh"
it_init replication_tls
need_cmd openssl openssl || exit 2
need_cmd tcpdump tcpdump || exit 2
need_cmd qemu-img qemu-utils qemu-block-extra || exit 2
cluster_init 3470 || exit 2

make_ca() {  # make_ca DIR
  mkdir -p "$1"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj "/CN=freevsa test CA" \
    -keyout "$1/ca.key" -out "$1/ca.crt" 2>/dev/null
}
make_cert() {  # make_cert CADIR OUTDIR NODE NAME-IN-CERT
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$4" \
    -keyout "$2/$3.key" -out "$2/$3.csr" 2>/dev/null &&
    openssl x509 -req -in "$2/$3.csr" -CA "$1/ca.crt" -CAkey "$1/ca.key" -CAcreateserial -days 30 \
      -extfile <(printf 'subjectAltName=DNS:%s\n' "$4") -out "$2/$3.crt" 2>/dev/null
}
PKI=$IT_TMP/pki ROGUE=$IT_TMP/rogue MISNAMED=$IT_TMP/misnamed
make_ca "$PKI" && make_cert "$PKI" "$PKI" a a && make_cert "$PKI" "$PKI" b b || { bad "cannot make test certificates"; it_finish; }
# b's certificate signed by another CA, and one signed by the right CA for a node named c
make_ca "$ROGUE" && make_cert "$ROGUE" "$ROGUE" b b && mkdir -p "$MISNAMED" && make_cert "$PKI" "$MISNAMED" b c ||
  { bad "cannot make test certificates"; it_finish; }

PATTERN=FREEVSA-PLAINTEXT-PROBE-
python3 -c "import sys; sys.stdout.write(('$PATTERN' * 200)[:4096])" >"$IT_TMP/pattern.img"
fresh() { node_stop a; node_stop b; rm -rf "$IT_TMP/data"; mkdir -p "$IT_TMP/data/a" "$IT_TMP/data/b"; : >"$IT_TMP/a.log"; : >"$IT_TMP/b.log"; }
pattern_on_link() {  # pattern_on_link NAME : writes the pattern through a, captures the replication port; 0 if seen
  local cap=$IT_TMP/$1.pcap pid seen
  timeout 60 tcpdump -i lo -U -s 0 -w "$cap" "tcp port $C_REPL_PORT" 2>/dev/null &
  pid=$!
  sleep 1
  timeout 60 qemu-img convert -n -f raw -O raw "$IT_TMP/pattern.img" "$(iscsi_url a)" || echo "qemu-img failed" >&2
  sleep 1
  kill -INT $pid 2>/dev/null; wait $pid 2>/dev/null
  seen=$(grep -ac "$PATTERN" "$cap")
  log "$1: $(stat -c %s "$cap") bytes captured on the link, pattern lines seen: $seen"
  [ "${seen:-0}" -gt 0 ]
}

echo "--- plain TCP, the control"
cluster_config a
cluster_config b
node_start a && node_start b || exit 2
check "plain: in sync" wait_in_sync 60
check "plain: the written data is visible on the replication link (the capture works)" pattern_on_link plain

echo "--- TLS with a key derived from the cluster secret"
fresh
cluster_config a TLS=psk
cluster_config b TLS=psk
node_start a && node_start b || exit 2
check "TLS-PSK: in sync" wait_in_sync 60
check "TLS-PSK: a's log says the link is TLS 1.3" node_log_has a "connected to b \(127\.0\.0\.2:[0-9]+, TLSv1\.3\)"
check "TLS-PSK: the written data is not visible on the replication link" not pattern_on_link tls-psk
check "TLS-PSK: the replicas are identical" replicas_identical
fresh
cluster_config a TLS=psk
cluster_config b TLS=psk SECRET=not-the-cluster-secret-9876543210
node_start a && node_start b || exit 2
check "TLS-PSK: a node with another secret fails the TLS handshake" wait_log a "TLS handshake with 127\.0\.0\.2 failed" 15
check "TLS-PSK: never connected" [ "$(status_field a "p['connection']")" = Connecting ]

echo "--- TLS with certificates"
fresh
cluster_config a TLS="$PKI"
cluster_config b TLS="$PKI"
node_start a && node_start b || exit 2
check "TLS: in sync" wait_in_sync 60
check "TLS: a's log says the link is TLS" node_log_has a "connected to b \(127\.0\.0\.2:[0-9]+, TLSv1\.[23]\)"
check "TLS: the written data is not visible on the replication link" not pattern_on_link tls
check "TLS: the replicas are identical" replicas_identical

refused_with_cert_of() {  # refused_with_cert_of NAME DIR REGEX : b presents DIR/b.crt; a refuses it saying REGEX
  fresh
  cluster_config a TLS="$PKI"
  cluster_config b TLS="$PKI"
  sed -i "s#b: $PKI/b.crt#b: $2/b.crt#; s#b: $PKI/b.key#b: $2/b.key#" "$IT_TMP/b.yaml"
  node_start a && node_start b || exit 2
  check "$1: a refuses b" wait_log a "$3" 15
  check "$1: never connected" [ "$(status_field a "p['connection']")" = Connecting ]
}
echo "--- a certificate from another CA"
refused_with_cert_of "rogue CA" "$ROGUE" "TLS handshake with 127\.0\.0\.2 failed: .*certificate"
echo "--- a certificate for another node"
refused_with_cert_of "misnamed (the certificate names c)" "$MISNAMED" "TLS certificate is not issued to 'b'"
node_stop a; node_stop b

echo "--- a missing certificate file"
cluster_config a TLS="$IT_TMP/nowhere"
out=$(cd "$IT_TMP" && timeout 20 "$FREEVSA" serve --config a.yaml --node a 2>&1); rc=$?
echo "  $out" | tail -2
check "serve refuses to start (exit $rc) and names the file and the reason" \
  [ $rc -ne 0 -a -n "$(grep -F "$IT_TMP/nowhere/a.crt" <<<"$out" | grep "No such file")" ]
it_finish
