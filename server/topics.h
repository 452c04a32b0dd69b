#pragma once
// The topic rules of the service's tree (<prefix>/<client>/…), shared by the core and the ACL.

#include <optional>
#include <string_view>

namespace mqttspec::server {

// True when `id` is usable as a client id in topics: 1–128 characters, none of '/', '+', '#' or
// NUL (MOSQUITTO.md §5: the v5 plugin path passes such ids through unfiltered).
bool IsValidClientId(std::string_view id);

// The client id of "<prefix>/<client>/request", or nullopt for any other shape or an invalid id.
std::optional<std::string_view> ClientOfRequestTopic(std::string_view prefix,
                                                     std::string_view topic);

// Where `client` may have answers sent (MQTT 5 Response Topic) and may subscribe: its own tree,
// "<prefix>/<client>/<level>[/…]" with <level> not "request" (answers must never become requests),
// no '#', and '+' only below <level> — so "response", "notify/+" and "replies/x" qualify.
// With `filter` false, no wildcard at all (a topic to publish to).
bool IsOwnReplyTopic(std::string_view prefix, std::string_view client, std::string_view topic,
                     bool filter);

}  // namespace mqttspec::server
