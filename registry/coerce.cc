#include "registry/coerce.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "common/json_document.h"
#include "common/time_util.h"

namespace mqttspec::registry {
namespace {

Error Invalid(const Field& f, std::string_view why) {
  return MakeError(ErrorCode::kInvalidValue,
                   fmt::format("field '{}' ({}): {}", f.name, FieldTypeName(f.type), why));
}

std::optional<int64_t> ParseInt(std::string_view s) {
  int64_t v;
  if (s.empty()) return std::nullopt;
  const char* b = s.data();
  if (*b == '+') ++b;
  if (b == s.data() + s.size() || *b == '+' || (*b == '-' && b != s.data())) return std::nullopt;
  auto [p, ec] = std::from_chars(b, s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<double> ParseReal(std::string_view s) {
  if (s.empty() || s.size() > 64) return std::nullopt;
  // Decimal notation only: strtod alone would also take hex, "inf" and leading blanks.
  if (s.find_first_not_of("0123456789+-.eE") != std::string_view::npos) return std::nullopt;
  std::string tmp(s);
  char* end = nullptr;
  double v = std::strtod(tmp.c_str(), &end);
  if (end != tmp.c_str() + tmp.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// Whether any string or key inside `j` holds a NUL character (jsonb refuses \u0000).
bool HasNul(const rapidjson::Value& j) {
  if (j.IsString())
    return std::string_view(j.GetString(), j.GetStringLength()).find('\0') !=
           std::string_view::npos;
  if (j.IsArray()) {
    for (const auto& e : j.GetArray())
      if (HasNul(e)) return true;
  }
  if (j.IsObject()) {
    for (const auto& m : j.GetObject())
      if (HasNul(m.name) || HasNul(m.value)) return true;
  }
  return false;
}

}  // namespace

std::string_view JsonTypeName(const rapidjson::Value& j) {
  switch (j.GetType()) {
    case rapidjson::kNullType: return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType: return "boolean";
    case rapidjson::kObjectType: return "object";
    case rapidjson::kArrayType: return "array";
    case rapidjson::kStringType: return "string";
    case rapidjson::kNumberType: return "number";
  }
  return "value";
}

Result<Value> CoerceJson(const Field& f, const rapidjson::Value& j) {
  if (j.IsNull()) {
    if (!f.nullable) return Invalid(f, "may not be null");
    return Value{};
  }
  std::string_view got = JsonTypeName(j);
  switch (f.type) {
    case FieldType::kInteger:
      if (j.IsInt64()) return Value{j.GetInt64()};
      if (j.IsUint64()) return Invalid(f, "out of range");
      if (j.IsDouble()) {
        double d = j.GetDouble();
        if (std::trunc(d) == d && std::fabs(d) < 9.007199254740992e15)
          return Value{static_cast<int64_t>(d)};
        return Invalid(f, "not an integer");
      }
      if (j.IsString()) {
        if (auto v = ParseInt({j.GetString(), j.GetStringLength()})) return Value{*v};
        return Invalid(f, "not an integer");
      }
      return Invalid(f, fmt::format("expected an integer, got {}", got));
    case FieldType::kReal:
      if (j.IsNumber()) return Value{j.GetDouble()};
      if (j.IsString()) {
        if (auto v = ParseReal({j.GetString(), j.GetStringLength()})) return Value{*v};
        return Invalid(f, "not a number");
      }
      return Invalid(f, fmt::format("expected a number, got {}", got));
    case FieldType::kText:
      if (j.IsString()) {
        std::string_view s(j.GetString(), j.GetStringLength());
        // PostgreSQL cannot store it and SQLite's LIKE stops at it: refused on every database.
        if (s.find('\0') != std::string_view::npos) return Invalid(f, "text may not contain NUL");
        return Value{std::string(s)};
      }
      return Invalid(f, fmt::format("expected a string, got {}", got));
    case FieldType::kBoolean:
      if (j.IsBool()) return Value{j.GetBool()};
      if (j.IsInt64() && (j.GetInt64() == 0 || j.GetInt64() == 1)) return Value{j.GetInt64() == 1};
      if (j.IsString()) {
        std::string_view s(j.GetString(), j.GetStringLength());
        if (s == "true") return Value{true};
        if (s == "false") return Value{false};
      }
      return Invalid(f, fmt::format("expected a boolean, got {}", got));
    case FieldType::kTimestamp:
      if (j.IsString()) {
        if (auto t = NormalizeIso8601({j.GetString(), j.GetStringLength()}))
          return Value{std::move(*t)};
        return Invalid(f, "not an ISO 8601 timestamp");
      }
      return Invalid(f, fmt::format("expected an ISO 8601 timestamp string, got {}", got));
    case FieldType::kJson: {
      if (HasNul(j)) return Invalid(f, "JSON strings may not contain NUL (\\u0000)");
      rapidjson::StringBuffer buf;
      rapidjson::Writer<rapidjson::StringBuffer> w(buf);
      j.Accept(w);
      return Value{std::string(buf.GetString(), buf.GetSize())};
    }
  }
  return Invalid(f, "unsupported type");
}

Result<Value> CoerceText(const Field& f, std::string_view text) {
  rapidjson::Value j;
  switch (f.type) {
    case FieldType::kText:
    case FieldType::kTimestamp:
      j.SetString(text.data(), static_cast<rapidjson::SizeType>(text.size()));
      return CoerceJson(f, j);
    case FieldType::kBoolean:
      if (text == "1" || text == "0") return Value{text == "1"};
      j.SetString(text.data(), static_cast<rapidjson::SizeType>(text.size()));
      return CoerceJson(f, j);
    case FieldType::kJson: {
      LocalDocument doc;
      if (!ParseExactJson(text, *doc)) {
        j.SetString(text.data(), static_cast<rapidjson::SizeType>(text.size()));
        return CoerceJson(f, j);
      }
      return CoerceJson(f, *doc);
    }
    default:
      j.SetString(text.data(), static_cast<rapidjson::SizeType>(text.size()));
      return CoerceJson(f, j);
  }
}

rapidjson::Value ToJson(const Field& f, const Value& v, rapidjson::Document::AllocatorType& a) {
  switch (v.index()) {
    case 1: return rapidjson::Value(std::get<bool>(v));
    case 2: return rapidjson::Value(static_cast<int64_t>(std::get<int64_t>(v)));
    case 3: return rapidjson::Value(std::get<double>(v));
    case 4: {
      const std::string& s = std::get<std::string>(v);
      if (f.type == FieldType::kJson) {
        rapidjson::Document doc(&a);
        if (ParseExactJson(s, doc)) return rapidjson::Value(doc, a);
      }
      return rapidjson::Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a);
    }
    default: return rapidjson::Value();
  }
}

void WriteJson(const Field& f, const Value& v, JsonWriter& w) {
  switch (v.index()) {
    case 0: w.Null(); return;
    case 1: w.Bool(std::get<bool>(v)); return;
    case 2:
      if (f.type == FieldType::kBoolean)
        w.Bool(std::get<int64_t>(v) != 0);
      else if (f.type == FieldType::kReal)
        w.Double(static_cast<double>(std::get<int64_t>(v)));
      else
        w.Int64(std::get<int64_t>(v));
      return;
    case 3: {
      double d = std::get<double>(v);
      if (f.type == FieldType::kInteger && std::trunc(d) == d)
        w.Int64(static_cast<int64_t>(d));
      else if (std::isfinite(d))
        w.Double(d);
      else
        w.Null();
      return;
    }
    case 4: {
      const std::string& s = std::get<std::string>(v);
      if (f.type == FieldType::kJson) {
        LocalDocument doc;
        if (ParseExactJson(s, *doc)) {
          doc->Accept(w);
          return;
        }
      }
      w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
      return;
    }
  }
}

}  // namespace mqttspec::registry
