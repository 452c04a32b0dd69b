#pragma once
// The data commands' arguments as request fields: --filter/--sort/--limit/--offset as the
// protocol's options object (docs/protocol.md §4) and the JSON argument of create/update.
// Pure functions; errors are one-line messages for a usage error (exit 2).

#include <google/protobuf/struct.pb.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mqttspec::ctl {

struct ReadArgs {
  std::vector<std::string> filters;  // col:op[:value]
  std::vector<std::string> sorts;    // col[:asc|:desc]
  std::optional<uint64_t> limit;
  std::optional<uint64_t> offset;
};

// Fills *options from args; false with *error on a malformed --filter or --sort.
//   --filter col:op:value  → {"column": col, "operator": op, "value": ValueFromText(value)};
//                            the value may hold ':'; is_null/is_not_null need none; for in,
//                            not_in and between it is a comma-separated list (→ an array)
//   --sort col[:desc]      → {"column": col, "direction": "asc"|"desc"}
bool BuildReadOptions(const ReadArgs& args, google::protobuf::Struct* options, std::string* error);

// A value typed on the command line, as the protocol gets it: a JSON number, true, false, null
// or "double-quoted string" is that JSON value; anything else is the text as a string. An
// integer beyond ±2^53 stays text (a double would lose digits; the service parses it).
google::protobuf::Value ValueFromText(std::string_view text);

// The JSON argument of create/update; false with *error when it is not JSON.
bool ParseJsonArgument(const std::string& text, google::protobuf::Value* value, std::string* error);

}  // namespace mqttspec::ctl
