// mqttspecctl's output: the table printer, key: value lines, JSON lines and cell text.

#include "tools/mqttspecctl/output.h"

#include <fmt/core.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <set>

namespace mqttspec::ctl {

namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

constexpr const char* kColumnGap = "   ";

// Display width of UTF-8 text: its code points (continuation bytes do not count).
size_t Width(const std::string& text) {
  return std::count_if(text.begin(), text.end(),
                       [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

std::string Upper(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return std::toupper(c); });
  return text;
}

// Keys of the objects: those in `preferred` that occur, in that order, then the rest sorted.
std::vector<std::string> OrderedKeys(const std::vector<const Struct*>& objects,
                                     const std::vector<std::string>& preferred) {
  std::set<std::string> present;
  for (const Struct* object : objects) {
    for (const auto& [key, unused] : object->fields()) present.insert(key);
  }
  std::vector<std::string> keys;
  for (const std::string& key : preferred) {
    if (present.erase(key) > 0) keys.push_back(key);
  }
  keys.insert(keys.end(), present.begin(), present.end());
  return keys;
}

std::string FieldCell(const Struct& object, const std::string& key) {
  auto it = object.fields().find(key);
  return it == object.fields().end() ? "" : Cell(it->second);
}

void PrintRows(const google::protobuf::ListValue& list, const std::vector<std::string>& order) {
  bool all_objects = std::all_of(list.values().begin(), list.values().end(), [](const Value& v) {
    return v.kind_case() == Value::kStructValue;
  });
  if (!all_objects) {  // not rows: one value a line
    for (const Value& value : list.values()) fmt::print("{}\n", Cell(value));
    std::fflush(stdout);
    return;
  }
  std::vector<const Struct*> rows;
  for (const Value& item : list.values()) rows.push_back(&item.struct_value());
  std::vector<std::string> keys = OrderedKeys(rows, order);
  Table table(keys);
  for (const Struct* row : rows) {
    std::vector<std::string> cells;
    for (const std::string& key : keys) cells.push_back(FieldCell(*row, key));
    table.AddRow(std::move(cells));
  }
  table.Print();
}

void PrintObject(const Struct& object, const std::vector<std::string>& order) {
  std::vector<std::pair<std::string, std::string>> fields;
  for (const std::string& key : OrderedKeys({&object}, order)) {
    fields.emplace_back(key, FieldCell(object, key));
  }
  PrintFields(fields);
}

}  // namespace

Table::Table(std::vector<std::string> header) : header_(std::move(header)) {}

void Table::AddRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }

void Table::Print() const {
  std::vector<std::string> header;
  for (const std::string& name : header_) header.push_back(Upper(name));
  std::vector<size_t> widths;
  auto widen = [&widths](const std::vector<std::string>& row) {
    if (row.size() > widths.size()) widths.resize(row.size());
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], Width(row[i]));
  };
  widen(header);
  for (const auto& row : rows_) widen(row);
  if (!header.empty()) fmt::print("{}\n", FormatRow(header, widths));
  for (const auto& row : rows_) fmt::print("{}\n", FormatRow(row, widths));
  std::fflush(stdout);
}

std::string FormatRow(const std::vector<std::string>& cells, std::span<const size_t> widths) {
  std::string line;
  for (size_t i = 0; i < cells.size(); ++i) {
    if (i > 0) line += kColumnGap;
    line += cells[i];
    if (i + 1 < cells.size() && i < widths.size() && Width(cells[i]) < widths[i]) {
      line.append(widths[i] - Width(cells[i]), ' ');
    }
  }
  line.erase(line.find_last_not_of(' ') + 1);  // empty last cells leave no trailing blanks
  return line;
}

void PrintFields(const std::vector<std::pair<std::string, std::string>>& fields) {
  Table table;
  for (const auto& [key, value] : fields) table.AddRow({key + ":", value});
  table.Print();
}

bool PrintJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    fmt::print(stderr, "mqttspecctl: cannot print the answer as JSON: {}\n",
               std::string(status.message()));
    return false;
  }
  fmt::print("{}\n", json);
  std::fflush(stdout);
  return true;
}

std::string Cell(bool value) { return value ? "true" : "false"; }

std::string Cell(double value) {
  if (std::isfinite(value) && value == std::trunc(value) && std::fabs(value) < 1e15) {
    return fmt::format("{:.0f}", value);
  }
  return fmt::format("{}", value);
}

std::string Cell(uint64_t value) { return std::to_string(value); }

std::string Cell(const Value& value) {
  switch (value.kind_case()) {
    case Value::kStringValue: return value.string_value();
    case Value::kNumberValue: return Cell(value.number_value());
    case Value::kBoolValue: return Cell(value.bool_value());
    case Value::kNullValue: return "<null>";
    case Value::kStructValue:
    case Value::kListValue: {
      std::string json;
      if (!google::protobuf::util::MessageToJsonString(value, &json).ok()) return "?";
      return json;
    }
    default: return "";
  }
}

void PrintData(const Value& data, const std::vector<std::string>& field_order) {
  switch (data.kind_case()) {
    case Value::kListValue: PrintRows(data.list_value(), field_order); break;
    case Value::kStructValue: PrintObject(data.struct_value(), field_order); break;
    default: fmt::print("{}\n", Cell(data)); std::fflush(stdout);
  }
}

}  // namespace mqttspec::ctl
