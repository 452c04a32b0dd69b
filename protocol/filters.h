#pragma once
// Filters: a client's (or a hook's) JSON filter list → adapters::FilterList, every column resolved
// in the model registry and every value coerced to its field's type. Operators, value shapes,
// groups (AND/OR, nesting) and their limits as docs/protocol.md §Filters says. Hooks' filters
// (HookContext::AddFilter) go through ParseFilter, so they are checked exactly like a client's.

#include <rapidjson/document.h>

#include "adapters/query.h"
#include "common/error.h"
#include "protocol/limits.h"
#include "registry/model.h"

namespace mqttspec::protocol {

// One filter list of one request: counts filters across groups against the limits.
class FilterParser {
 public:
  FilterParser(const registry::Model& m, const ParseLimits& limits);
  // `depth` is the nesting of `arr` (0 for options.filters). Errors: invalid_filter,
  // unknown_column, invalid_value.
  Result<adapters::FilterList> List(const rapidjson::Value& arr, int depth);

 private:
  Result<adapters::FilterNode> Node(const rapidjson::Value& f, int depth);

  const registry::Model& m_;
  const ParseLimits& l_;
  int count_ = 0;
};

// One filter object ({"column", "operator", "value"} or a group) checked exactly like a client's:
// used for filters that hooks add.
Result<adapters::FilterNode> ParseFilter(const registry::Model& model,
                                         const rapidjson::Value& filter, const ParseLimits& limits);

}  // namespace mqttspec::protocol
