#include "adapters/recorded_writes.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <chrono>

namespace mqttspec::adapters {

namespace {

std::string EncodeKeys(const registry::Model& m, const std::vector<Change>& changes) {
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  const size_t pk = m.primary_index();
  w.StartArray();
  for (const Change& c : changes) {
    const Row& row = c.kind == Change::Kind::kDelete ? c.before : c.after;
    const Value& key = pk < row.size() ? row[pk] : Value{};
    switch (key.index()) {
      case 0: w.Null(); break;
      case 1: w.Bool(std::get<bool>(key)); break;
      case 2: w.Int64(std::get<int64_t>(key)); break;
      case 3: w.Double(std::get<double>(key)); break;
      case 4: {
        const auto& s = std::get<std::string>(key);
        w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
        break;
      }
    }
  }
  w.EndArray();
  return std::string(out.GetString(), out.GetSize());
}

}  // namespace

std::vector<Statement> WriteRecorder::Statements(const WriteTag& tag, const registry::Model& m,
                                                 const std::vector<Change>& changes,
                                                 int64_t now_ms) {
  std::vector<Statement> out;
  if (changes.empty()) return out;
  if (auto trim = TrimIfDue(now_ms)) out.push_back(std::move(*trim));
  out.push_back(sql_.RecordWrite(tag, EncodeKeys(m, changes)));
  return out;
}

std::optional<Statement> WriteRecorder::TrimIfDue(int64_t now_ms) {
  std::optional<Statement> trim;
  if (now_ms >= next_trim_ms_) {
    next_trim_ms_ = now_ms + kTrimIntervalMs;
    trim = sql_.TrimWrites(now_ms, std::max(kTrimRows, 2 * recorded_since_trim_));
    recorded_since_trim_ = 0;
  }
  ++recorded_since_trim_;
  return trim;
}

Result<std::vector<Value>> DecodeKeys(std::string_view text) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  if (d.HasParseError() || !d.IsArray())
    return MakeError(ErrorCode::kInternal, "unreadable record of a write");
  std::vector<Value> keys;
  for (const auto& v : d.GetArray()) {
    if (v.IsNull()) keys.emplace_back();
    else if (v.IsBool()) keys.emplace_back(v.GetBool());
    else if (v.IsInt64()) keys.emplace_back(v.GetInt64());
    else if (v.IsNumber()) keys.emplace_back(v.GetDouble());
    else if (v.IsString()) keys.emplace_back(std::string(v.GetString(), v.GetStringLength()));
    else return MakeError(ErrorCode::kInternal, "unreadable record of a write");
  }
  return keys;
}

int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace mqttspec::adapters
