#pragma once
// What the fuzz targets share (fuzz/README.md): the JSON parse the server does, the models inputs
// are parsed against (a fixed registry, or a model an input describes), the check that ends a run
// with the input's story, and the invariants every parsed value and filter list must satisfy.

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/query.h"
#include "common/json_text.h"
#include "common/value.h"
#include "protocol/limits.h"
#include "protocol/render.h"
#include "registry/model.h"
#include "registry/model_builder.h"
#include "registry/model_registry.h"
#include "tests/unit/value_printer.h"

namespace mqttspec::fuzz {

// Ends the run: prints what failed and why, then aborts, so libFuzzer keeps the input as a crash.
[[noreturn]] inline void Fail(std::string_view what, const std::string& details) {
  std::fprintf(stderr, "\n*** fuzz check failed: %.*s\n%s\n", static_cast<int>(what.size()),
               what.data(), details.c_str());
  std::abort();
}

// FUZZ_CHECK(condition, details): `details` (a std::string expression) is built only on failure.
#define FUZZ_CHECK(cond, details)                                     \
  do {                                                                \
    if (!(cond)) ::mqttspec::fuzz::Fail(#cond, std::string(details)); \
  } while (0)

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Parses `text` the way the server parses a request payload (protocol/request.cc): iteratively
// (no recursion), UTF-8 validated, numbers at full precision (zeros made exact first).
inline bool ParseJson(std::string_view text, rapidjson::Document& doc) {
  std::string patched;
  text = ExactNumbers(text, &patched);
  doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag |
            rapidjson::kParseStopWhenDoneFlag | rapidjson::kParseFullPrecisionFlag>(text.data(),
                                                                                    text.size());
  return !doc.HasParseError();
}

inline const rapidjson::Value* Member(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(name);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

// The limits inputs are parsed within: the defaults of the configuration (limits.*).
inline const protocol::ParseLimits& Limits() {
  static const protocol::ParseLimits limits;
  return limits;
}

namespace internal {

inline registry::FieldSpec F(std::string name, std::string type, bool nullable = true) {
  registry::FieldSpec f;
  f.name = std::move(name);
  f.type = std::move(type);
  f.nullable = nullable;
  return f;
}

inline registry::ModelPtr MustBuild(const registry::ModelSpec& spec) {
  auto m = registry::BuildModel(spec);
  if (!m.ok()) Fail("a fuzz registry model is valid", m.error().message);
  return m.value();
}

}  // namespace internal

// The models inputs name by schema/entity, together every field type, key type and option:
//   public.items   an auto-increment integer key "id", one nullable field of every type, a
//                  required text, literal and "now" defaults, a unique indexed text, an index
//   shop.orders    a text key "code"; fields named like SQL keywords and in mixed case
//   log.events     a timestamp key "at"; a real and a boolean that may not be null
inline const registry::ModelRegistry& Registry() {
  using internal::F;
  static registry::ModelRegistry registry;
  static const bool filled = [] {
    registry::ModelSpec items;
    items.entity = "items";
    items.fields = {
        F("id", "integer", false), F("i", "integer"),    F("r", "real"), F("t", "text"),
        F("b", "boolean"),         F("ts", "timestamp"), F("j", "json"), F("name", "text", false)};
    auto with_default = [](registry::FieldSpec f, std::string d) {
      f.default_text = std::move(d);
      return f;
    };
    items.fields.push_back(with_default(F("status", "text", false), "active"));
    items.fields.push_back(with_default(F("created_at", "timestamp"), "now"));
    items.fields.push_back(with_default(F("qty", "integer"), "1"));
    registry::FieldSpec email = F("email", "text");
    email.unique = true;
    email.indexed = true;
    items.fields.push_back(email);
    registry::FieldSpec score = F("score", "real");
    score.indexed = true;
    items.fields.push_back(score);

    registry::ModelSpec orders;
    orders.schema = "shop";
    orders.entity = "orders";
    orders.primary_key = "code";
    orders.fields = {F("code", "text", false), F("select", "integer"),     F("order", "text"),
                     F("from", "real"),        F("Mixed_Case", "boolean"), F("where", "timestamp"),
                     F("group", "json")};
    orders.fields[2].indexed = true;

    registry::ModelSpec events;
    events.schema = "log";
    events.entity = "events";
    events.primary_key = "at";
    events.fields = {F("at", "timestamp", false), F("level", "real", false),
                     F("seen", "boolean", false), F("msg", "text")};

    for (const auto* spec : {&items, &orders, &events}) {
      auto st = registry.Register(internal::MustBuild(*spec));
      if (!st.ok()) Fail("the fuzz registry is consistent", st.error().message);
    }
    return true;
  }();
  (void)filled;
  return registry;
}

// A model an input describes, with the configuration's keys (README §models):
//   {"name": "schema.entity" | "entity", "primary_key": "k",
//    "fields": [{"name", "type", "nullable", "unique", "primary_key", "auto_increment", "index",
//                "default"}, …]}
// built through registry::BuildModel like a configured one. nullptr when the description is not
// of that shape or BuildModel refuses it. At most `max_fields` fields.
inline registry::ModelPtr ModelFromJson(const rapidjson::Value& spec, size_t max_fields = 12) {
  if (!spec.IsObject()) return nullptr;
  auto str = [](const rapidjson::Value* v, std::string* out) {
    if (!v) return true;
    if (!v->IsString()) return false;
    out->assign(v->GetString(), v->GetStringLength());
    return true;
  };
  auto flag = [](const rapidjson::Value* v, bool* out) {
    if (!v) return true;
    if (!v->IsBool()) return false;
    *out = v->GetBool();
    return true;
  };
  registry::ModelSpec m;
  std::string name;
  if (!str(Member(spec, "name"), &name) || !str(Member(spec, "primary_key"), &m.primary_key))
    return nullptr;
  m.entity = name;
  if (auto dot = name.find('.'); dot != std::string::npos) {
    m.schema = name.substr(0, dot);
    m.entity = name.substr(dot + 1);
  }
  const rapidjson::Value* fields = Member(spec, "fields");
  if (!fields || !fields->IsArray() || fields->Size() > max_fields) return nullptr;
  for (const auto& fv : fields->GetArray()) {
    registry::FieldSpec f;
    f.auto_increment = false;  // the configuration says it explicitly
    bool auto_increment = false;
    std::string default_text;
    if (!fv.IsObject() || !str(Member(fv, "name"), &f.name) || !str(Member(fv, "type"), &f.type) ||
        !flag(Member(fv, "nullable"), &f.nullable) || !flag(Member(fv, "unique"), &f.unique) ||
        !flag(Member(fv, "primary_key"), &f.primary) ||
        !flag(Member(fv, "auto_increment"), &auto_increment) ||
        !flag(Member(fv, "index"), &f.indexed) || !str(Member(fv, "default"), &default_text))
      return nullptr;
    f.auto_increment = auto_increment;
    if (Member(fv, "default")) f.default_text = default_text;
    m.fields.push_back(std::move(f));
  }
  auto model = registry::BuildModel(m);
  return model.ok() ? model.value() : nullptr;
}

// The model of a request-shaped input: its "model" description when it has one, else the
// registry's model named by "schema" (default public) and "entity" (default items).
inline registry::ModelPtr ModelOf(const rapidjson::Value& input) {
  if (const rapidjson::Value* spec = Member(input, "model")) return ModelFromJson(*spec);
  std::string schema = "public", entity = "items";
  if (const rapidjson::Value* s = Member(input, "schema"); s && s->IsString())
    schema.assign(s->GetString(), s->GetStringLength());
  if (const rapidjson::Value* e = Member(input, "entity"); e && e->IsString())
    entity.assign(e->GetString(), e->GetStringLength());
  return Registry().Find(schema, entity);
}

// Models SQLite cannot hold although the registry accepts them — SQLite's identifiers ignore
// ASCII case, and names starting with "sqlite_" are its own: such a model fails to migrate on
// SQLite (with an error). The fuzz targets skip them.
inline bool SqliteCannotHold(const registry::Model& m, std::string_view table) {
  auto lower = [](std::string_view s) {
    std::string out(s);
    for (char& c : out) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    return out;
  };
  if (lower(table).rfind("sqlite_", 0) == 0) return true;
  for (size_t i = 0; i < m.fields().size(); ++i) {
    for (size_t j = i + 1; j < m.fields().size(); ++j) {
      if (lower(m.field(i).name) == lower(m.field(j).name)) return true;
    }
  }
  return false;
}

// The model as text for failure reports: "shop.orders(code text key, select integer, …)".
inline std::string Describe(const registry::Model& m) {
  std::string out = m.qualified_name() + "(";
  for (size_t i = 0; i < m.fields().size(); ++i) {
    const registry::Field& f = m.field(i);
    out += (i ? ", " : "") + f.name + " " + std::string(registry::FieldTypeName(f.type));
    if (f.primary) out += " key";
    if (f.auto_increment) out += " auto";
    if (!f.nullable) out += " not-null";
    if (f.unique) out += " unique";
    if (f.default_value) out += " default=" + f.default_value->display;
  }
  return out + ")";
}

// True when `v` has the form a coerced value of `f` has (registry/coerce.h): integer → int64,
// real → finite double, boolean → bool, text → text without NUL, timestamp → normalized ISO 8601 UTC,
// json → JSON text. Null only when the field is nullable.
inline bool HasFieldForm(const registry::Field& f, const Value& v) {
  using registry::FieldType;
  if (IsNull(v)) return f.nullable;
  switch (f.type) {
    case FieldType::kInteger: return std::holds_alternative<int64_t>(v);
    case FieldType::kReal: {
      const auto* d = std::get_if<double>(&v);
      return d && std::isfinite(*d);
    }
    case FieldType::kBoolean: return std::holds_alternative<bool>(v);
    case FieldType::kText: {
      const auto* s = std::get_if<std::string>(&v);
      return s && s->find('\0') == std::string::npos;
    }
    case FieldType::kTimestamp: {
      const auto* s = std::get_if<std::string>(&v);
      if (!s || s->size() != 24) return false;
      for (size_t i = 0; i < 24; ++i) {
        const char want = "0000-00-00T00:00:00.000Z"[i];
        const char c = (*s)[i];
        if (want == '0' ? (c < '0' || c > '9') : c != want) return false;
      }
      return true;
    }
    case FieldType::kJson: {
      const auto* s = std::get_if<std::string>(&v);
      rapidjson::Document doc;
      return s && !doc.Parse(s->data(), s->size()).HasParseError();
    }
  }
  return false;
}

// Why the filter list `filters` of model `m` is not what protocol::FilterParser may produce
// within `limits` (docs/protocol.md §4.1), or "" when it is. `count` accumulates conditions and
// groups over all levels.
inline std::string FilterListProblem(const registry::Model& m, const adapters::FilterList& filters,
                                     const protocol::ParseLimits& limits, int depth, int* count) {
  using adapters::Op;
  using registry::FieldType;
  if (depth > limits.max_filter_depth) return "groups nest deeper than the limit";
  for (const adapters::FilterNode& n : filters) {
    if (++*count > limits.max_filters) return "more filters than the limit";
    if (n.is_group) {
      if (auto p = FilterListProblem(m, n.children, limits, depth + 1, count); !p.empty()) return p;
      continue;
    }
    const adapters::Condition& c = n.cond;
    if (c.field < 0 || static_cast<size_t>(c.field) >= m.fields().size())
      return "a condition's field is out of range";
    const registry::Field& f = m.field(static_cast<size_t>(c.field));
    const std::string where = std::string(adapters::OpName(c.op)) + " on " + f.name + ": ";
    if (f.type == FieldType::kJson && c.op != Op::kIsNull && c.op != Op::kIsNotNull)
      return where + "json fields filter by null-ness only";
    size_t want_min = 1, want_max = 1;
    switch (c.op) {
      case Op::kIsNull:
      case Op::kIsNotNull: want_min = want_max = 0; break;
      case Op::kBetween: want_min = want_max = 2; break;
      case Op::kIn:
      case Op::kNotIn: want_min = 0, want_max = limits.max_list_values; break;
      default: break;
    }
    if (c.values.size() < want_min || c.values.size() > want_max)
      return where + "wrong number of values: " + std::to_string(c.values.size());
    for (const Value& v : c.values) {
      if (IsNull(v)) return where + "a null value";
      if (!HasFieldForm(f, v)) return where + "a value not of the field's form: " + Show(v);
    }
    if (c.op == Op::kLike || c.op == Op::kIlike || c.op == Op::kContains ||
        c.op == Op::kStartsWith) {
      if (f.type != FieldType::kText) return where + "a pattern operator on a non-text field";
      if (c.op == Op::kLike || c.op == Op::kIlike) {
        const std::string& p = std::get<std::string>(c.values[0]);
        size_t backslashes = 0;
        while (backslashes < p.size() && p[p.size() - 1 - backslashes] == '\\') ++backslashes;
        if (backslashes % 2 == 1) return where + "a pattern ending in an unescaped backslash";
      }
    }
  }
  return "";
}

// A filter list as the protocol's JSON, for failure reports.
inline std::string ShowFilters(const registry::Model& m, const adapters::FilterList& filters) {
  return protocol::RenderFilters(m, filters);
}

}  // namespace mqttspec::fuzz
