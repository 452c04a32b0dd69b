// --filter, --sort, --limit, --offset and JSON arguments turned into request fields.

#include "tools/mqttspecctl/query_args.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>
#include <cmath>

namespace mqttspec::ctl {

namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

constexpr double kMaxExactInteger = 9007199254740992.0;  // 2^53

bool IsListOperator(std::string_view op) { return op == "in" || op == "not_in" || op == "between"; }

bool IsValuelessOperator(std::string_view op) { return op == "is_null" || op == "is_not_null"; }

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return out;
}

Value StringValue(std::string_view text) {
  Value value;
  value.set_string_value(std::string(text));
  return value;
}

Value ListFromText(std::string_view text) {
  Value value;
  auto* list = value.mutable_list_value();
  if (text.empty()) return value;  // `in` with nothing: an empty array
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    *list->add_values() = ValueFromText(text.substr(start, comma - start));
    if (comma == std::string_view::npos) return value;
    start = comma + 1;
  }
}

bool ParseFilter(std::string_view spec, Struct* filter, std::string* error) {
  size_t first = spec.find(':');
  size_t second = first == std::string_view::npos ? first : spec.find(':', first + 1);
  std::string_view column = spec.substr(0, first);
  std::string_view op = first == std::string_view::npos
                            ? std::string_view()
                            : spec.substr(first + 1, second - first - 1);
  bool has_value = second != std::string_view::npos;
  if (column.empty() || op.empty() || (!has_value && !IsValuelessOperator(op))) {
    *error = "bad --filter '" + std::string(spec) + "': expected column:operator:value";
    return false;
  }
  auto& fields = *filter->mutable_fields();
  fields["column"] = StringValue(column);
  fields["operator"] = StringValue(op);
  if (has_value) {
    std::string_view text = spec.substr(second + 1);
    fields["value"] = IsListOperator(op) ? ListFromText(text) : ValueFromText(text);
  }
  return true;
}

bool ParseSort(std::string_view spec, Struct* key, std::string* error) {
  size_t colon = spec.find(':');
  std::string_view column = spec.substr(0, colon);
  std::string direction = colon == std::string_view::npos ? "asc" : Lower(spec.substr(colon + 1));
  if (column.empty() || (direction != "asc" && direction != "desc")) {
    *error = "bad --sort '" + std::string(spec) + "': expected column or column:desc";
    return false;
  }
  auto& fields = *key->mutable_fields();
  fields["column"] = StringValue(column);
  fields["direction"] = StringValue(direction);
  return true;
}

bool IsIntegerText(std::string_view text) {
  if (!text.empty() && text.front() == '-') text.remove_prefix(1);
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); });
}

}  // namespace

bool BuildReadOptions(const ReadArgs& args, Struct* options, std::string* error) {
  auto& fields = *options->mutable_fields();
  if (!args.filters.empty()) {
    auto* filters = fields["filters"].mutable_list_value();
    for (const std::string& spec : args.filters) {
      if (!ParseFilter(spec, filters->add_values()->mutable_struct_value(), error)) return false;
    }
  }
  if (!args.sorts.empty()) {
    auto* sort = fields["sort"].mutable_list_value();
    for (const std::string& spec : args.sorts) {
      if (!ParseSort(spec, sort->add_values()->mutable_struct_value(), error)) return false;
    }
  }
  if (args.limit) fields["limit"].set_number_value(static_cast<double>(*args.limit));
  if (args.offset) fields["offset"].set_number_value(static_cast<double>(*args.offset));
  return true;
}

Value ValueFromText(std::string_view text) {
  Value value;
  if (!google::protobuf::util::JsonStringToMessage(text, &value).ok()) return StringValue(text);
  switch (value.kind_case()) {
    case Value::kNumberValue:
      if (IsIntegerText(text) && std::fabs(value.number_value()) >= kMaxExactInteger) {
        return StringValue(text);
      }
      return value;
    case Value::kStringValue:
    case Value::kBoolValue:
    case Value::kNullValue: return value;
    default: return StringValue(text);  // an object or array: not a value of one column
  }
}

bool ParseJsonArgument(const std::string& text, Value* value, std::string* error) {
  auto status = google::protobuf::util::JsonStringToMessage(text, value);
  if (status.ok()) return true;
  std::string message(status.message());
  *error = "bad JSON argument: " + message.substr(0, message.find('\n'));  // not the excerpt
  return false;
}

}  // namespace mqttspec::ctl
