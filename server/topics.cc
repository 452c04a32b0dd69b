#include "server/topics.h"

namespace mqttspec::server {

bool IsValidClientId(std::string_view id) {
  return !id.empty() && id.size() <= 128 &&
         id.find_first_of(std::string_view("/+#\0", 4)) == std::string_view::npos;
}

namespace {
constexpr std::string_view kRequest = "/request";
}  // namespace

std::string RequestFilter(std::string_view prefix) {
  return std::string(prefix) + "/+" + std::string(kRequest);
}

namespace {
// "<prefix>/<client><rest><last>": a topic in a client's tree.
std::string InTree(std::string_view prefix, std::string_view client, std::string_view rest,
                   std::string_view last = {}) {
  std::string t;
  t.reserve(prefix.size() + 1 + client.size() + rest.size() + last.size());
  t.append(prefix).append(1, '/').append(client).append(rest).append(last);
  return t;
}
}  // namespace

std::string ResponseTopic(std::string_view prefix, std::string_view client) {
  return InTree(prefix, client, "/response");
}

std::string NotifyTopic(std::string_view prefix, std::string_view client,
                        std::string_view subscription_id) {
  return InTree(prefix, client, "/notify/", subscription_id);
}

bool IsRequestTopic(std::string_view prefix, std::string_view topic) {
  return topic.size() > prefix.size() + 1 + kRequest.size() &&
         topic.substr(0, prefix.size()) == prefix && topic[prefix.size()] == '/' &&
         topic.substr(topic.size() - kRequest.size()) == kRequest;
}

bool IsReservedClientId(std::string_view id) {
  return id.substr(0, kGrpcClientPrefix.size()) == kGrpcClientPrefix;
}

std::optional<std::string_view> ClientOfRequestTopic(std::string_view prefix,
                                                     std::string_view topic) {
  if (!IsRequestTopic(prefix, topic)) return std::nullopt;
  std::string_view id =
      topic.substr(prefix.size() + 1, topic.size() - prefix.size() - 1 - kRequest.size());
  if (!IsValidClientId(id)) return std::nullopt;
  return id;
}

bool IsOwnReplyTopic(std::string_view prefix, std::string_view client, std::string_view topic) {
  if (!IsValidClientId(client)) return false;
  const size_t own = prefix.size() + 1 + client.size() + 1;  // "<prefix>/<client>/"
  if (topic.size() <= own || topic.substr(0, prefix.size()) != prefix ||
      topic[prefix.size()] != '/' || topic.substr(prefix.size() + 1, client.size()) != client ||
      topic[own - 1] != '/')
    return false;
  std::string_view rest = topic.substr(own);
  std::string_view level = rest.substr(0, rest.find('/'));
  if (level.empty() || level == "request") return false;
  return rest.find_first_of("+#") == std::string_view::npos;  // a topic, not a filter
}

bool IsValidTwinKey(std::string_view key) { return IsValidClientId(key); }  // the same rule

std::optional<TwinTopic> ParseTwinTopic(std::string_view prefix, std::string_view topic) {
  if (topic.size() <= prefix.size() + 1 || topic.substr(0, prefix.size()) != prefix ||
      topic[prefix.size()] != '/')
    return std::nullopt;
  std::string_view rest = topic.substr(prefix.size() + 1);  // "<device>/twin/…"
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  TwinTopic t;
  t.device = rest.substr(0, slash);
  rest = rest.substr(slash + 1);
  constexpr std::string_view kGet = "twin/get", kReports = "twin/reports/";
  if (rest == kGet) {
    t.kind = TwinTopic::Kind::kGet;
  } else if (rest.substr(0, kReports.size()) == kReports) {
    t.kind = TwinTopic::Kind::kReport;
    t.key = rest.substr(kReports.size());
    if (!IsValidTwinKey(t.key)) return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (!IsValidClientId(t.device)) return std::nullopt;
  return t;
}

std::string TwinRequestTopic(std::string_view prefix, std::string_view device,
                             std::string_view key) {
  return InTree(prefix, device, "/twin/requests/", key);
}

int PartitionOf(std::string_view client_id, int count) {
  uint32_t h = 2166136261u;
  for (unsigned char c : client_id) {
    h ^= c;
    h *= 16777619u;
  }
  return count > 1 ? static_cast<int>(h % static_cast<uint32_t>(count)) : 0;
}

}  // namespace mqttspec::server
