#include "server/embedded/acl.h"

#include <string>
#include <vector>

#include "server/topics.h"

namespace mqttspec::server::embedded {
namespace {

std::vector<std::string_view> Levels(std::string_view topic) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t slash = topic.find('/', start);
    out.push_back(topic.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) return out;
    start = slash + 1;
  }
}

// Whether a filter level could match the literal `level`.
bool LevelMatches(std::string_view filter_level, std::string_view level) {
  return filter_level == "+" || filter_level == "#" || filter_level == level;
}

bool SubscribeAllowed(std::string_view prefix, std::string_view id, std::string_view filter) {
  auto l = Levels(filter);
  if (l.empty()) return false;
  // Filters that cannot reach the prefix tree are none of our business.
  if (!LevelMatches(l[0], prefix)) return true;
  if (l[0] == "#") return false;  // would match every client's tree
  if (l.size() < 2) return true;  // "<prefix>" or "+" alone: not inside the tree
  if (l[1] != id) return false;   // "+", "#", or another client's id
  // Inside the own tree: where answers may be sent (response, notify/+, MQTT 5 reply topics).
  std::string own(prefix);
  own += filter.substr(l[0].size());  // the same filter with the prefix level spelled out
  return IsOwnReplyTopic(prefix, id, own, /*filter=*/true);
}

}  // namespace

bool AclAllows(std::string_view prefix, std::string_view id, Access access,
               std::string_view topic) {
  // Refused at CONNECT already; refused here again so no id can act as a wildcard.
  if (!IsValidClientId(id)) return false;
  if (access == Access::kSubscribe || access == Access::kUnsubscribe) {
    constexpr std::string_view kShare = "$share/";
    if (topic.substr(0, kShare.size()) == kShare) {
      size_t slash = topic.find('/', kShare.size());
      if (slash == std::string_view::npos) return false;
      topic = topic.substr(slash + 1);
    }
    if (access == Access::kUnsubscribe) return true;  // unsubscribing never exposes anything
    return SubscribeAllowed(prefix, id, topic);
  }
  auto l = Levels(topic);
  if (l[0] != prefix) return true;  // outside the service's tree
  if (l.size() < 2) return true;
  const bool own = l[1] == id;
  const bool request = l.size() == 3 && l[2] == "request";
  if (access == Access::kWrite) return own && request;
  return own && !request;  // kRead
}

}  // namespace mqttspec::server::embedded
