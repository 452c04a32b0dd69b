#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "registry/coerce.h"
#include "server/handlers/handler.h"

namespace mqttspec::server {

Error NotFound(const registry::Model& m, const Value& key) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  registry::WriteJson(m.primary(), key, w);
  return MakeError(ErrorCode::kNotFound, fmt::format("no {} with {} = {}", m.qualified_name(),
                                                     m.primary().name, buf.GetString()));
}

std::vector<int> AllColumns(const registry::Model& m) {
  std::vector<int> all(m.fields().size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  return all;
}

}  // namespace mqttspec::server
