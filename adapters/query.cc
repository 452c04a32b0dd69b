#include "adapters/query.h"

#include <array>
#include <utility>

namespace mqttspec::adapters {
namespace {
constexpr std::array<std::pair<std::string_view, Op>, 15> kOps{{
    {"eq", Op::kEq},
    {"neq", Op::kNeq},
    {"gt", Op::kGt},
    {"gte", Op::kGte},
    {"lt", Op::kLt},
    {"lte", Op::kLte},
    {"like", Op::kLike},
    {"ilike", Op::kIlike},
    {"in", Op::kIn},
    {"not_in", Op::kNotIn},
    {"between", Op::kBetween},
    {"is_null", Op::kIsNull},
    {"is_not_null", Op::kIsNotNull},
    {"contains", Op::kContains},
    {"starts_with", Op::kStartsWith},
}};
}  // namespace

std::optional<Op> ParseOp(std::string_view name) {
  for (const auto& [n, op] : kOps) {
    if (n == name) return op;
  }
  return std::nullopt;
}

std::string_view OpName(Op op) {
  for (const auto& [n, o] : kOps) {
    if (o == op) return n;
  }
  return "?";
}

}  // namespace mqttspec::adapters
