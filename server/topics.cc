#include "server/topics.h"

namespace mqttspec::server {

bool IsValidClientId(std::string_view id) {
  return !id.empty() && id.size() <= 128 &&
         id.find_first_of(std::string_view("/+#\0", 4)) == std::string_view::npos;
}

std::optional<std::string_view> ClientOfRequestTopic(std::string_view prefix,
                                                     std::string_view topic) {
  constexpr std::string_view kSuffix = "/request";
  if (topic.size() <= prefix.size() + 1 + kSuffix.size()) return std::nullopt;
  if (topic.substr(0, prefix.size()) != prefix || topic[prefix.size()] != '/') return std::nullopt;
  if (topic.substr(topic.size() - kSuffix.size()) != kSuffix) return std::nullopt;
  std::string_view id =
      topic.substr(prefix.size() + 1, topic.size() - prefix.size() - 1 - kSuffix.size());
  if (!IsValidClientId(id)) return std::nullopt;
  return id;
}

bool IsOwnReplyTopic(std::string_view prefix, std::string_view client, std::string_view topic,
                     bool filter) {
  if (!IsValidClientId(client)) return false;
  const size_t own = prefix.size() + 1 + client.size() + 1;  // "<prefix>/<client>/"
  if (topic.size() <= own || topic.substr(0, prefix.size()) != prefix ||
      topic[prefix.size()] != '/' || topic.substr(prefix.size() + 1, client.size()) != client ||
      topic[own - 1] != '/')
    return false;
  std::string_view rest = topic.substr(own);
  std::string_view level = rest.substr(0, rest.find('/'));
  if (level.empty() || level == "request" || level.find_first_of("+#") != std::string_view::npos)
    return false;
  if (rest.find('#') != std::string_view::npos) return false;
  if (!filter && rest.find('+') != std::string_view::npos) return false;
  return true;
}

}  // namespace mqttspec::server
