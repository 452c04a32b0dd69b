#pragma once
// What mqttspecctl prints on stdout: aligned tables and key: value lines for people, one JSON
// object per line for scripts (--json), and the text of a cell.

#include <google/protobuf/message.h>
#include <google/protobuf/struct.pb.h>

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace mqttspec::ctl {

// Aligned columns, like `kubectl get`: an upper-case header row (none when the header is empty),
// each cell padded to the widest of its column, three spaces between columns.
class Table {
 public:
  explicit Table(std::vector<std::string> header = {});

  void AddRow(std::vector<std::string> cells);
  void Print() const;  // to stdout

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// One line of cells, each padded to its width (the last one not), three spaces apart. Cells wider
// than their width push the rest of the line right.
std::string FormatRow(const std::vector<std::string>& cells, std::span<const size_t> widths);

// `key:` and value lines, the values aligned.
void PrintFields(const std::vector<std::pair<std::string, std::string>>& fields);

// The message as one line of JSON on stdout (proto field names, every primitive field, even
// when it is zero), flushed. False (with a message on stderr) if it cannot be converted.
bool PrintJson(const google::protobuf::Message& message);

// Cell text: numbers without a needless ".0", "true"/"false", "<null>", objects and arrays as
// compact JSON.
std::string Cell(bool value);
std::string Cell(double value);
std::string Cell(uint64_t value);
std::string Cell(const google::protobuf::Value& value);

// The `data` of a Query answer for people: a list of objects (rows) as a table whose columns are
// the rows' fields, one object as key: value lines, anything else as its cell text. Fields named
// in `field_order` (the model's order) come first, the others after them, sorted.
void PrintData(const google::protobuf::Value& data, const std::vector<std::string>& field_order);

}  // namespace mqttspec::ctl
