#pragma once
// Matches: evaluates a filter list against a row in memory, with the semantics of the SQL the
// adapters run for the same filters (adapters/sql_builder.h), so a subscription is notified of
// exactly the rows a read with the same filters would return:
//   - a NULL column compares false with every operator but is_null (so neq / not_in never match
//     a NULL), is_not_null is the reverse;
//   - integers and reals compare numerically, text/timestamp/json byte-wise (timestamps are
//     normalized ISO 8601, so byte order is time order), booleans as 0/1;
//   - like is case-sensitive, ilike folds ASCII letters only (as SQLite's lower()), '_' matches
//     one UTF-8 character, '\' escapes; contains / starts_with match their text literally;
//   - AND binds tighter than OR; groups nest.
// Pure and thread-safe.

#include "adapters/query.h"
#include "common/value.h"
#include "registry/model.h"

namespace mqttspec::server {

// `row` holds every field of `model`, in field order.
bool Matches(const registry::Model& model, const adapters::FilterList& filters, const Row& row);

// SQL LIKE with ESCAPE '\' (exposed for tests).
bool LikeMatch(std::string_view text, std::string_view pattern, bool fold_ascii_case);

}  // namespace mqttspec::server
