#pragma once
// Request options: filters, sort, columns / omit_columns, limit (capped at max_rows), offset;
// since_change_seq (subscribe only).
// Any other option is refused by name (invalid_option), client-supplied SQL above all.

#include <rapidjson/document.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "adapters/query.h"
#include "common/error.h"
#include "protocol/limits.h"
#include "registry/model.h"

namespace mqttspec::protocol {

// Fills `q` (filters, sort, columns, limit, offset) from the request's options (may be null).
Status ParseOptions(const registry::Model& m, const rapidjson::Value* options,
                    const ParseLimits& limits, adapters::ReadQuery* q);

// options.since_change_seq of a subscribe (`subscribe` false: refused if given): a non-negative
// integer, or nullopt when absent or null.
Status ParseSinceChangeSeq(const rapidjson::Value* options, bool subscribe,
                           std::optional<int64_t>* out);

// The fields to return: `columns` (or all) minus `omit` (either may be null).
Status ParseColumns(const registry::Model& m, const rapidjson::Value* columns,
                    const rapidjson::Value* omit, std::vector<int>* out);

}  // namespace mqttspec::protocol
