#pragma once
// The bounds every request is parsed within (from the configuration's limits.*).

#include <cstddef>
#include <cstdint>

namespace mqttspec::protocol {

struct ParseLimits {
  int64_t max_rows = 1000;
  int max_filters = 64;           // conditions and groups, counted together
  int max_filter_depth = 8;       // nesting of groups
  size_t max_list_values = 1000;  // values of one in/not_in
  size_t max_batch = 1000;        // records of one create
};

}  // namespace mqttspec::protocol
