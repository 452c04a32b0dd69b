// mqttspec::client::Json: JSON values as compact text, read and written with RapidJSON.
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>

#include "mqttspec/client.h"

namespace mqttspec::client {
namespace {

constexpr unsigned kParseFlags = rapidjson::kParseFullPrecisionFlag;

bool ParseText(std::string_view text, rapidjson::Document& doc) {
  doc.Parse<kParseFlags>(text.data(), text.size());
  return !doc.HasParseError();
}

std::string Write(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace

Json::Json(double v) {
  if (!std::isfinite(v)) {
    text_ = "null";
    return;
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.Double(v);
  text_.assign(buf.GetString(), buf.GetSize());
}

Json::Json(std::string_view s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  text_.assign(buf.GetString(), buf.GetSize());
}

Json Json::Object(std::initializer_list<std::pair<std::string_view, Json>> fields) {
  std::string t = "{";
  for (const auto& [k, v] : fields) {
    if (t.size() > 1) t += ',';
    t += Json(k).text_;
    t += ':';
    t += v.text_;
  }
  t += '}';
  return Json(Raw{}, std::move(t));
}

Json Json::Object(const std::vector<std::pair<std::string, Json>>& fields) {
  std::string t = "{";
  for (const auto& [k, v] : fields) {
    if (t.size() > 1) t += ',';
    t += Json(std::string_view(k)).text_;
    t += ':';
    t += v.text_;
  }
  t += '}';
  return Json(Raw{}, std::move(t));
}

Json Json::Array(std::initializer_list<Json> items) {
  return Array(std::vector<Json>(items.begin(), items.end()));
}

Json Json::Array(const std::vector<Json>& items) {
  std::string t = "[";
  for (const Json& v : items) {
    if (t.size() > 1) t += ',';
    t += v.text_;
  }
  t += ']';
  return Json(Raw{}, std::move(t));
}

std::optional<Json> Json::Parse(std::string_view text) {
  rapidjson::Document doc;
  if (!ParseText(text, doc)) return std::nullopt;
  return Json(Raw{}, Write(doc));  // compact, whatever the spacing given
}

std::optional<Json> Json::Get(std::string_view key) const {
  rapidjson::Document doc;
  if (!ParseText(text_, doc) || !doc.IsObject()) return std::nullopt;
  auto it =
      doc.FindMember(rapidjson::Value(key.data(), static_cast<rapidjson::SizeType>(key.size())));
  if (it == doc.MemberEnd()) return std::nullopt;
  return Json(Raw{}, Write(it->value));
}

std::optional<Json> Json::At(size_t index) const {
  rapidjson::Document doc;
  if (!ParseText(text_, doc) || !doc.IsArray() || index >= doc.Size()) return std::nullopt;
  return Json(Raw{}, Write(doc[static_cast<rapidjson::SizeType>(index)]));
}

std::vector<std::string> Json::Keys() const {
  std::vector<std::string> out;
  rapidjson::Document doc;
  if (!ParseText(text_, doc) || !doc.IsObject()) return out;
  for (const auto& m : doc.GetObject())
    out.emplace_back(m.name.GetString(), m.name.GetStringLength());
  return out;
}

std::vector<Json> Json::Elements() const {
  std::vector<Json> out;
  rapidjson::Document doc;
  if (!ParseText(text_, doc) || !doc.IsArray()) return out;
  out.reserve(doc.Size());
  for (const auto& v : doc.GetArray()) out.push_back(Json(Raw{}, Write(v)));
  return out;
}

std::optional<std::string> Json::AsString() const {
  rapidjson::Document doc;
  if (!ParseText(text_, doc) || !doc.IsString()) return std::nullopt;
  return std::string(doc.GetString(), doc.GetStringLength());
}

std::optional<int64_t> Json::AsInt() const {
  rapidjson::Document doc;
  if (!ParseText(text_, doc)) return std::nullopt;
  if (doc.IsInt64()) return doc.GetInt64();
  if (doc.IsDouble()) {
    const double d = doc.GetDouble();
    if (std::trunc(d) == d && std::fabs(d) < 9.2e18) return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

std::optional<double> Json::AsDouble() const {
  rapidjson::Document doc;
  if (!ParseText(text_, doc) || !doc.IsNumber()) return std::nullopt;
  return doc.GetDouble();
}

std::optional<bool> Json::AsBool() const {
  rapidjson::Document doc;
  if (!ParseText(text_, doc) || !doc.IsBool()) return std::nullopt;
  return doc.GetBool();
}

Entity::Entity(std::string_view qualified) {
  const size_t dot = qualified.find('.');
  if (dot == std::string_view::npos) {
    name = std::string(qualified);
  } else {
    schema = std::string(qualified.substr(0, dot));
    name = std::string(qualified.substr(dot + 1));
  }
}

}  // namespace mqttspec::client
