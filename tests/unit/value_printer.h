#pragma once
// Readable text for Values in test failure messages: NULL, true, 42, 2.5d, 'text'.

#include <sstream>
#include <string>
#include <vector>

#include "common/value.h"

namespace mqttspec {

inline std::string Show(const Value& v) {
  std::ostringstream os;
  switch (v.index()) {
    case 0: os << "NULL"; break;
    case 1: os << (std::get<bool>(v) ? "true" : "false"); break;
    case 2: os << std::get<int64_t>(v); break;
    case 3: os << std::get<double>(v) << "d"; break;
    case 4: os << '\'' << std::get<std::string>(v) << '\''; break;
  }
  return os.str();
}

inline std::string Show(const std::vector<Value>& values) {  // also a Row
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + Show(values[i]);
  return out + "]";
}

}  // namespace mqttspec
