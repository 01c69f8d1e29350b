#!/usr/bin/env bash
# control_auth.sh - only the node's own administrator changes its roles through the control endpoint.
# timeout: 180
#
# Nodes a and b run on loopback; each creates its control token (data/NODE/NODE.control-token,
# mode 0600) at its first start. Then:
#  - as user nobody (who cannot read the token), form-encoded and text/plain POSTs of demote and
#    promote - what a web page in a browser on the node can send to any site - are refused with
#    401, and so is a JSON POST without the token; the roles and the link are as before;
#  - nobody may read the status (GET); a request naming another Host (DNS rebinding) is refused;
#  - a wrong token is refused with 403 and logged with the client's address, never the token;
#    the right token with a form body is refused with 415; nothing changes;
#  - root's `freevsa demote` / `promote` (the commands as the README shows them, no extra flags)
#    switch the roles and back;
#  - a token file others can read keeps the node from starting; a control address that is not
#    loopback (0.0.0.0, a network address) is refused by check-config.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/lib_cluster.sh"
it_init control_auth
need_cmd curl curl || exit 2
need_cmd setpriv util-linux || exit 2
cluster_init 4170 || exit 2
cluster_config a
cluster_config b
node_start a || exit 2
node_start b || exit 2
check "the cluster is in sync within 60 s" wait_in_sync 60

url() { echo "http://${NODE_ADDR[$1]}:$C_CTL_PORT$2"; }
token_file() { echo "$IT_TMP/data/$1/$1.control-token"; }
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
# http NODE PATH [CURL ARGS...] / http_as_nobody ... : prints the HTTP status of the answer
http() {
  local node=$1 path=$2; shift 2
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" "$(url "$node" "$path")"
}
http_as_nobody() {
  local node=$1 path=$2; shift 2
  as_nobody curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" "$(url "$node" "$path")"
}
roles() { echo "$(status_field a "v['role']") $(status_field b "v['role']") $(status_field a "p['connection']")"; }
# exited_saying RC WANT REGEX FILE : the command exited WANT and FILE says why
exited_saying() { [ "$1" -eq "$2" ] && grep -q "$3" "$4"; }

for n in a b; do
  check "$n created its token file at first start, mode 600, owned by root" \
    [ "$(stat -c '%a %U' "$(token_file $n)" 2>/dev/null)" = "600 root" ]
done
check "a's log names the token file" node_log_has a "control endpoint on .*token in data/a/a.control-token"
check "nobody cannot read a's token" not as_nobody cat "$(token_file a)" 2>/dev/null

before=$(roles)
check "before: a primary, b secondary, connected" [ "$before" = "primary secondary Connected" ]

echo "--- as nobody: what a browser can send cross-site, and JSON without the token"
form=(-H 'Content-Type: application/x-www-form-urlencoded' -H 'Origin: http://evil.example')
plain=(-H 'Content-Type: text/plain' -H 'Origin: http://evil.example')
check "nobody: form-encoded POST demote on a is refused (401)" \
  [ "$(http_as_nobody a /v1/demote "${form[@]}" --data "volume=$C_VOLUME")" = 401 ]
check "nobody: text/plain POST demote on a is refused (401)" \
  [ "$(http_as_nobody a /v1/demote "${plain[@]}" --data "volume=$C_VOLUME")" = 401 ]
check "nobody: form-encoded POST promote with force on b is refused (401)" \
  [ "$(http_as_nobody b /v1/promote "${form[@]}" --data "volume=$C_VOLUME&force=1")" = 401 ]
check "nobody: text/plain POST promote with force on b is refused (401)" \
  [ "$(http_as_nobody b /v1/promote "${plain[@]}" --data "{\"volume\":\"$C_VOLUME\",\"force\":true}")" = 401 ]
check "nobody: JSON POST demote on a without the token is refused (401)" \
  [ "$(http_as_nobody a /v1/demote -H 'Content-Type: application/json' --data "{\"volume\":\"$C_VOLUME\"}")" = 401 ]
check "nobody may read the status (200)" [ "$(http_as_nobody a /v1/status)" = 200 ]
check "a status request naming another Host is refused (403)" \
  [ "$(http a /v1/status -H "Host: evil.example:$C_CTL_PORT")" = 403 ]
check "after nobody's requests: the roles and the link are unchanged" [ "$(roles)" = "$before" ]
check "a logs the refusals with the client's address" \
  node_log_has a "refused POST /v1/demote from 127\.0\.0\.1:[0-9]+: no control token.*\(HTTP 401\)"

echo "--- a wrong token, and the right token with a form body"
wrong=not-the-token-of-this-node-0123456789abcdef
check "a wrong token is refused (403)" \
  [ "$(http a /v1/demote -H "Authorization: Bearer $wrong" -H 'Content-Type: application/json' --data "{\"volume\":\"$C_VOLUME\"}")" = 403 ]
check "the refusal is logged with the client's address" \
  wait_log a "refused POST /v1/demote from 127\.0\.0\.1:[0-9]+: wrong control token \(HTTP 403\)" 5
check "the log holds neither the wrong token nor the right one" \
  not grep -qF -e "$wrong" -e "$(cat "$(token_file a)")" "$IT_TMP/a.log"
check "the right token with a form-encoded body is refused (415)" \
  [ "$(http a /v1/demote -H "Authorization: Bearer $(cat "$(token_file a)")" "${form[@]}" --data "volume=$C_VOLUME")" = 415 ]
check "after the refused requests: the roles and the link are unchanged" [ "$(roles)" = "$before" ]

echo "--- root's commands, as the README shows them"
check "root: demote a" node_cmd a demote "$C_VOLUME"
check "root: promote b" node_cmd b promote "$C_VOLUME"
check "b is primary, a secondary" [ "$(status_field a "v['role']") $(status_field b "v['role']")" = "secondary primary" ]
check "root: demote b" node_cmd b demote "$C_VOLUME"
check "root: promote a" node_cmd a promote "$C_VOLUME"
check "back: a primary, b secondary, connected" wait_for a "'%s %s' % (v['role'], p['connection'])" "primary Connected" 10

echo "--- refused configurations"
node_stop a
chmod 644 "$(token_file a)"
( cd "$IT_TMP" && timeout 20 "$FREEVSA" serve --config a.yaml --node a ) >"$IT_TMP/a-refused.log" 2>&1; rc=$?
sed 's/^/  /' "$IT_TMP/a-refused.log"
check "a token file others can read keeps the node from starting (exit $rc)" exited_saying $rc 1 \
  "control token data/a/a.control-token: mode 0644 lets other users read or change it" "$IT_TMP/a-refused.log"
chmod 600 "$(token_file a)"
check "with mode 600 again a starts and the cluster is in sync" node_start a
check "in sync again within 30 s" wait_in_sync 30
for address in 0.0.0.0 192.0.2.1; do
  sed "s/control: ${NODE_ADDR[a]}:/control: $address:/" "$IT_TMP/a.yaml" >"$IT_TMP/exposed.yaml"
  "$FREEVSA" check-config --config "$IT_TMP/exposed.yaml" >"$IT_TMP/exposed.out" 2>&1; rc=$?
  sed 's/^/  /' "$IT_TMP/exposed.out"
  check "check-config refuses the control address $address (exit $rc)" exited_saying $rc 1 \
    "speaks plain HTTP without TLS, so it only listens on this machine" "$IT_TMP/exposed.out"
done

check "a stops on SIGTERM" node_stop a
check "b stops on SIGTERM" node_stop b
it_finish
