// Version 1 of the control endpoint's API: what `freevsa status`, `promote`, `demote`, `verify`
// and `reconnect` ask a node, answered from its replication layer.
//
//   GET  /v1/status[?volume=NAME]       every volume (or one) as JSON           application/json
//   GET  /v1/status.txt[?volume=NAME]   the same as text for an administrator   text/plain
//   POST /v1/promote     body: {"volume": "NAME"[, "force": true]}
//   POST /v1/demote      body: {"volume": "NAME"}
//   POST /v1/verify      body: {"volume": "NAME"}
//   POST /v1/reconnect   body: {"volume": "NAME"}
//
// The POSTs are authorised by the server before they get here (control_auth.h: control token,
// JSON content type, Host). The status query is form-encoded, the commands' body a JSON object
// (json_object.h); both are checked strictly: an unknown, repeated or malformed parameter is 400,
// as is a POST without `volume`. A status query for a volume the node does not have is 404. The commands answer with the replication layer's
// status (200, 404, 409, 500) and a text/plain body: its message, then "warning: ..." on a line
// of its own when there is a warning. Every other error body is one line of text/plain.
#pragma once

#include <string>

#include "daemon/control_server.h"
#include "replication/replication_status.h"

namespace freevsa::daemon {

// `control` must outlive the server's handlers; `node_name` is reported in the status.
void register_control_api(ControlServer& server, replication::ReplicationControl& control, std::string node_name);

}  // namespace freevsa::daemon
