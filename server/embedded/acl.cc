#include "server/embedded/acl.h"

#include "server/topics.h"

namespace mqttspec::server::embedded {

bool AclAllows(std::string_view prefix, std::string_view id, Access access,
               std::string_view topic) {
  // Refused at CONNECT already; refused here again so no id can act as a wildcard.
  if (!IsValidClientId(id)) return false;
  // Any filter the broker found valid: isolation is decided per message at delivery (kRead).
  if (access == Access::kSubscribe || access == Access::kUnsubscribe) return true;
  // Called for every message delivered to every subscriber: no allocation.
  if (topic.size() <= prefix.size() || topic.substr(0, prefix.size()) != prefix ||
      topic[prefix.size()] != '/')
    return true;  // outside the service's tree (or the bare prefix level)
  std::string_view rest = topic.substr(prefix.size() + 1);  // "<client>[/…]"
  const size_t slash = rest.find('/');
  const bool own = rest.substr(0, slash) == id;
  const bool request = slash != std::string_view::npos && rest.substr(slash + 1) == "request";
  // A device publishes its twin reports and twin/get (topics.h) besides its requests; like
  // requests, they are the service's to consume, nobody receives them.
  const bool inbound = request || ParseTwinTopic(prefix, topic).has_value();
  if (access == Access::kWrite) return own && inbound;
  return own && !inbound;  // kRead
}

}  // namespace mqttspec::server::embedded
