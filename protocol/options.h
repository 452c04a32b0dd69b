#pragma once
// Request options: filters, sort, columns / omit_columns, limit (capped at max_rows), offset.
// Any other option is refused by name (invalid_option), client-supplied SQL above all.

#include <rapidjson/document.h>

#include <vector>

#include "adapters/query.h"
#include "common/error.h"
#include "protocol/limits.h"
#include "registry/model.h"

namespace mqttspec::protocol {

// Fills `q` (filters, sort, columns, limit, offset) from the request's options (may be null).
Status ParseOptions(const registry::Model& m, const rapidjson::Value* options,
                    const ParseLimits& limits, adapters::ReadQuery* q);

// The fields to return: `columns` (or all) minus `omit` (either may be null).
Status ParseColumns(const registry::Model& m, const rapidjson::Value* columns,
                    const rapidjson::Value* omit, std::vector<int>* out);

}  // namespace mqttspec::protocol
