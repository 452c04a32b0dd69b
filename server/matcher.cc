#include "server/matcher.h"

#include <cmath>
#include <optional>

namespace mqttspec::server {

using adapters::Condition;
using adapters::FilterList;
using adapters::Logic;
using adapters::Op;
using registry::FieldType;

namespace {

bool IsNumber(const Value& v) { return v.index() == 1 || v.index() == 2 || v.index() == 3; }

double AsDouble(const Value& v) {
  switch (v.index()) {
    case 1: return std::get<bool>(v) ? 1.0 : 0.0;
    case 2: return static_cast<double>(std::get<int64_t>(v));
    case 3: return std::get<double>(v);
    default: return 0.0;
  }
}

// <0, 0, >0 like SQL's comparison of two non-NULL values; SQLite orders numbers before text.
int Compare(const Value& a, const Value& b) {
  const bool an = IsNumber(a), bn = IsNumber(b);
  if (an && bn) {
    if ((a.index() == 2 || a.index() == 1) && (b.index() == 2 || b.index() == 1)) {
      int64_t x = a.index() == 2 ? std::get<int64_t>(a) : std::get<bool>(a);
      int64_t y = b.index() == 2 ? std::get<int64_t>(b) : std::get<bool>(b);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    double x = AsDouble(a), y = AsDouble(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (an != bn) return an ? -1 : 1;
  const std::string& x = std::get<std::string>(a);
  const std::string& y = std::get<std::string>(b);
  int c = x.compare(y);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

char FoldAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

size_t Utf8Length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 1;
}

bool TextOf(const Value& v, std::string* out) {
  if (v.index() == 4) {
    *out = std::get<std::string>(v);
    return true;
  }
  return false;
}

bool Eval(const registry::Model& m, const Condition& c, const Row& row) {
  const Value& x = row[static_cast<size_t>(c.field)];
  if (c.op == Op::kIsNull) return IsNull(x);
  if (c.op == Op::kIsNotNull) return !IsNull(x);
  if (IsNull(x)) return false;
  switch (c.op) {
    case Op::kEq: return Compare(x, c.values[0]) == 0;
    case Op::kNeq: return Compare(x, c.values[0]) != 0;
    case Op::kGt: return Compare(x, c.values[0]) > 0;
    case Op::kGte: return Compare(x, c.values[0]) >= 0;
    case Op::kLt: return Compare(x, c.values[0]) < 0;
    case Op::kLte: return Compare(x, c.values[0]) <= 0;
    case Op::kBetween: return Compare(x, c.values[0]) >= 0 && Compare(x, c.values[1]) <= 0;
    case Op::kIn:
    case Op::kNotIn: {
      bool found = false;
      for (const Value& v : c.values) {
        if (Compare(x, v) == 0) {
          found = true;
          break;
        }
      }
      return c.op == Op::kIn ? found : !found;
    }
    case Op::kLike:
    case Op::kIlike:
    case Op::kContains:
    case Op::kStartsWith: {
      std::string text, pattern;
      if (!TextOf(x, &text) || !TextOf(c.values[0], &pattern)) return false;
      // SQLite's LIKE reads text and pattern as C strings: both end at a NUL (which mqttspec
      // refuses in input, but another writer of the database may have stored).
      text.resize(std::min(text.size(), text.find('\0')));
      pattern.resize(std::min(pattern.size(), pattern.find('\0')));
      if (c.op == Op::kContains) return text.find(pattern) != std::string::npos;
      if (c.op == Op::kStartsWith) return text.compare(0, pattern.size(), pattern) == 0;
      return LikeMatch(text, pattern, c.op == Op::kIlike);
    }
    default: return false;
  }
  (void)m;
}

}  // namespace

bool LikeMatch(std::string_view t, std::string_view p, bool fold) {
  t = t.substr(0, t.find('\0'));  // as SQLite: text and pattern end at a NUL
  p = p.substr(0, p.find('\0'));
  // Iterative matcher with backtracking to the last '%' (linear in practice, no recursion).
  size_t ti = 0, pi = 0;
  size_t star_p = std::string_view::npos, star_t = 0;
  auto same = [&](char a, char b) { return fold ? FoldAscii(a) == FoldAscii(b) : a == b; };
  while (ti < t.size()) {
    if (pi < p.size() && p[pi] == '%') {
      while (pi < p.size() && p[pi] == '%') ++pi;
      if (pi == p.size()) return true;
      star_p = pi;
      star_t = ti;
      continue;
    }
    if (pi < p.size()) {
      if (p[pi] == '_') {
        ti += Utf8Length(static_cast<unsigned char>(t[ti]));
        ++pi;
        continue;
      }
      size_t plen = 1;
      size_t at = pi;
      if (p[pi] == '\\') {
        if (pi + 1 == p.size()) return false;  // a lone trailing escape matches nothing (SQLite)
        at = pi + 1, plen = 2;
      }
      if (same(t[ti], p[at])) {
        ++ti;
        pi += plen;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    // Let the last '%' swallow one more character and retry.
    star_t += Utf8Length(static_cast<unsigned char>(t[star_t]));
    ti = star_t;
    pi = star_p;
  }
  while (pi < p.size() && p[pi] == '%') ++pi;
  return pi == p.size();
}

bool Matches(const registry::Model& m, const FilterList& filters, const Row& row) {
  // OR of AND-runs: `any` collects finished runs, `run` is the current one.
  bool any = false, run = true;
  for (size_t i = 0; i < filters.size(); ++i) {
    const auto& n = filters[i];
    if (i > 0 && n.logic == Logic::kOr) {
      any = any || run;
      run = true;
    }
    if (!run) continue;  // this AND-run is already false
    bool v =
        n.is_group ? (n.children.empty() || Matches(m, n.children, row)) : Eval(m, n.cond, row);
    run = run && v;
  }
  return any || run;
}

}  // namespace mqttspec::server
