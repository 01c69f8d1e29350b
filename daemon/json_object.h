// The bodies of the control endpoint's commands: one flat JSON object whose values are strings
// or booleans, {"volume": "vol0", "force": true}. Strict RFC 8259 for what it accepts; nested
// values, numbers, null, a key given twice or anything after the object are refused.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <variant>

namespace freevsa::daemon {

// JSON's two-character escapes: "\n" stands for a line feed, and so on (RFC 8259 section 7;
// "\/" is only ever read, never needed when writing).
struct JsonEscape {
  char letter;  // after the backslash
  char byte;    // what it stands for
};
inline constexpr JsonEscape kJsonEscapes[] = {{'"', '"'},  {'\\', '\\'}, {'b', '\b'}, {'f', '\f'},
                                              {'n', '\n'}, {'r', '\r'},   {'t', '\t'}};

using JsonScalar = std::variant<std::string, bool>;

struct JsonObjectParse {
  std::map<std::string, JsonScalar> values;
  std::string error;  // empty: values holds the object
};

JsonObjectParse parse_json_object(std::string_view text);

}  // namespace freevsa::daemon
