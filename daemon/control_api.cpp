#include "daemon/control_api.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/json_object.h"
#include "daemon/status_render.h"

namespace freevsa::daemon {

using replication::CommandResult;
using replication::ReplicationControl;
using replication::VolumeStatus;

namespace {

constexpr const char* kText = "text/plain; charset=utf-8";
constexpr const char* kJson = "application/json";

HttpResponse text(int status, std::string body) { return {status, kText, std::move(body) + "\n"}; }

// A request that cannot be served as asked: the status and the reason (not a guess at what was
// meant). Thrown from the parsing helpers, answered by the handlers.
struct Refusal {
  int status = 400;
  std::string reason;
};

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string form_decode(std::string_view encoded) {
  std::string out;
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] == '+') {
      out += ' ';
    } else if (encoded[i] == '%') {
      const int high = i + 2 < encoded.size() ? hex_digit(encoded[i + 1]) : -1;
      const int low = high < 0 ? -1 : hex_digit(encoded[i + 2]);
      if (low < 0) throw Refusal{400, fmt::format("malformed percent escape in '{}'", encoded)};
      out += static_cast<char>(high * 16 + low);
      i += 2;
    } else {
      out += encoded[i];
    }
  }
  return out;
}

// "key=value&key=value" with only `known` keys, each at most once.
std::map<std::string, std::string> parse_form(std::string_view form, const std::vector<std::string>& known) {
  std::map<std::string, std::string> values;
  if (form.empty()) return values;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = std::min(form.find('&', start), form.size());
    const std::string_view pair = form.substr(start, end - start);
    const std::size_t equals = pair.find('=');
    if (pair.empty() || equals == std::string_view::npos) {
      throw Refusal{400, fmt::format("malformed parameter '{}': expected name=value", pair)};
    }
    std::string key = form_decode(pair.substr(0, equals));
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      throw Refusal{400, fmt::format("unknown parameter '{}' (this request takes: {})", key, fmt::join(known, ", "))};
    }
    if (!values.emplace(key, form_decode(pair.substr(equals + 1))).second) {
      throw Refusal{400, fmt::format("parameter '{}' is given twice", key)};
    }
    if (end == form.size()) return values;
    start = end + 1;
  }
}

// The command's body: a JSON object with only `known` keys (control_auth.h requires the JSON type).
std::map<std::string, JsonScalar> parse_body(std::string_view body, const std::vector<std::string>& known) {
  JsonObjectParse parsed = parse_json_object(body);
  if (!parsed.error.empty()) {
    throw Refusal{400, parsed.error + " (the body is a JSON object such as {\"volume\": \"vol0\"})"};
  }
  for (const auto& entry : parsed.values) {
    if (std::find(known.begin(), known.end(), entry.first) == known.end()) {
      throw Refusal{400, fmt::format("unknown parameter '{}' (this request takes: {})", entry.first, fmt::join(known, ", "))};
    }
  }
  return std::move(parsed.values);
}

std::string required_volume(const std::map<std::string, JsonScalar>& body) {
  auto it = body.find("volume");
  if (it == body.end()) {
    throw Refusal{400, "missing parameter 'volume': the request body names the volume, {\"volume\": \"NAME\"}"};
  }
  const std::string* volume = std::get_if<std::string>(&it->second);
  if (volume == nullptr || volume->empty()) throw Refusal{400, "volume must be a volume's name in double quotes"};
  return *volume;
}

bool flag(const std::map<std::string, JsonScalar>& body, const std::string& key) {
  auto it = body.find(key);
  if (it == body.end()) return false;
  const bool* value = std::get_if<bool>(&it->second);
  if (value == nullptr) throw Refusal{400, fmt::format("{} must be true or false, got a string", key)};
  return *value;
}

std::vector<VolumeStatus> volumes_asked_for(const ReplicationControl& control, const HttpRequest& request) {
  std::map<std::string, std::string> query = parse_form(request.query, {"volume"});
  std::vector<VolumeStatus> volumes = control.status();
  auto wanted = query.find("volume");
  if (wanted == query.end()) return volumes;
  auto it = std::find_if(volumes.begin(), volumes.end(),
                         [&](const VolumeStatus& v) { return v.name == wanted->second; });
  if (it == volumes.end()) {
    std::vector<std::string> names;
    for (const VolumeStatus& v : volumes) names.push_back(v.name);
    throw Refusal{404, fmt::format("no such volume: '{}' (this node has: {})", wanted->second,
                                   names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", ")))};
  }
  return {std::move(*it)};
}

HttpResponse command_answer(const CommandResult& result) {
  std::string body = result.message;
  if (!result.warning.empty()) body += "\nwarning: " + result.warning;
  // A status outside HTTP's range would make the answer unreadable to the client.
  const bool valid = result.http_status >= 200 && result.http_status <= 599;
  return text(valid ? result.http_status : 500, std::move(body));
}

using Command = std::function<CommandResult(const std::string& volume, bool force)>;

// Parses the body, runs the command, and turns any failure into an answer: a handler that
// threw would end the control server's thread.
HttpHandler command_handler(Command command, bool takes_force) {
  return [command = std::move(command), takes_force](const HttpRequest& request) {
    try {
      if (!request.query.empty()) {
        throw Refusal{400, "parameters go in the request body ({\"volume\": \"NAME\"}), not in the URL"};
      }
      std::vector<std::string> known = {"volume"};
      if (takes_force) known.push_back("force");
      std::map<std::string, JsonScalar> body = parse_body(request.body, known);
      return command_answer(command(required_volume(body), flag(body, "force")));
    } catch (const Refusal& refusal) {
      return text(refusal.status, refusal.reason);
    } catch (const std::exception& e) {
      return text(500, fmt::format("internal error: {}", e.what()));
    }
  };
}

using Render = std::function<HttpResponse(std::vector<VolumeStatus>)>;

HttpHandler status_handler(const ReplicationControl& control, Render render) {
  return [&control, render = std::move(render)](const HttpRequest& request) {
    try {
      return render(volumes_asked_for(control, request));
    } catch (const Refusal& refusal) {
      return text(refusal.status, refusal.reason);
    } catch (const std::exception& e) {
      return text(500, fmt::format("internal error: {}", e.what()));
    }
  };
}

}  // namespace

void register_control_api(ControlServer& server, ReplicationControl& control, std::string node_name) {
  server.handle("GET", "/v1/status", status_handler(control, [node_name](std::vector<VolumeStatus> volumes) {
                  return HttpResponse{200, kJson, status_json(node_name, volumes)};
                }));
  server.handle("GET", "/v1/status.txt", status_handler(control, [node_name](std::vector<VolumeStatus> volumes) {
                  return HttpResponse{200, kText, status_text(node_name, volumes)};
                }));
  server.handle("POST", "/v1/promote", command_handler([&control](const std::string& volume, bool force) {
                  return control.promote(volume, force);
                }, true));
  server.handle("POST", "/v1/demote", command_handler([&control](const std::string& volume, bool) {
                  return control.demote(volume);
                }, false));
  server.handle("POST", "/v1/verify", command_handler([&control](const std::string& volume, bool) {
                  return control.verify(volume);
                }, false));
  server.handle("POST", "/v1/reconnect", command_handler([&control](const std::string& volume, bool) {
                  return control.reconnect(volume);
                }, false));
}

}  // namespace freevsa::daemon
