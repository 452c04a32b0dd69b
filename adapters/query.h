#pragma once
// The validated, typed form of a request's options. Everything here refers to fields by their
// index in the model (never by client-supplied text), and every value is already coerced to its
// field's type: building SQL from a Query cannot inject anything.

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "common/value.h"
#include "registry/model.h"

namespace mqttspec::adapters {

enum class Op {
  kEq,
  kNeq,
  kGt,
  kGte,
  kLt,
  kLte,
  kLike,
  kIlike,
  kIn,
  kNotIn,
  kBetween,
  kIsNull,
  kIsNotNull,
  kContains,
  kStartsWith,
};

std::optional<Op> ParseOp(std::string_view name);
std::string_view OpName(Op op);

enum class Logic { kAnd, kOr };

// One comparison. `values` holds 1 value (comparisons, like), n (in/not_in), 2 (between) or 0.
struct Condition {
  int field = -1;
  Op op = Op::kEq;
  std::vector<Value> values;
};

// A filter list is evaluated left to right with SQL precedence (AND binds tighter than OR);
// `logic` joins a node to the node before it (ignored on the first node). A group is a
// parenthesized list of its own.
struct FilterNode {
  Logic logic = Logic::kAnd;
  bool is_group = false;
  Condition cond;                    // when !is_group
  std::vector<FilterNode> children;  // when is_group
};
using FilterList = std::vector<FilterNode>;

enum class Nulls { kDefault, kFirst, kLast };  // default: NULL sorts as the largest value

struct SortKey {
  int field = -1;
  bool desc = false;
  Nulls nulls = Nulls::kDefault;
};

struct ReadQuery {
  registry::ModelPtr model;
  FilterList filters;
  std::vector<SortKey> sort;  // empty: by primary key
  std::vector<int> columns;   // fields to return, in order; never empty
  int64_t limit = 0;          // > 0, already capped at limits.max_rows
  int64_t offset = 0;
  bool count_total = true;
};

struct ReadResult {
  std::vector<Row> rows;  // each aligned with ReadQuery::columns
  int64_t total = 0;      // rows matching the filters, ignoring limit/offset
  std::optional<int64_t> change_seq;  // Database::Read
};

struct Assignment {
  int field = -1;
  Value value;
};
using Record = std::vector<Assignment>;  // the fields a create or update sets

}  // namespace mqttspec::adapters
