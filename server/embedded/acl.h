#pragma once
// Topic isolation for the service's tree (<prefix>/<client>/…), decided per client:
//   publish   only to its own <prefix>/<id>/request
//   subscribe only inside its own tree where answers may be sent (server/topics.h
//             IsOwnReplyTopic: response, notify/+, notify/<subscription>, MQTT 5 reply topics
//             such as replies/x; never request, never '#'), and to nothing that could match
//             another client's tree ("#", "<prefix>/#", "<prefix>/+/…", "+/…" …)
//   receive   nothing on any request topic (requests are consumed by the service), and only its
//             own tree otherwise
// Topics outside the prefix behave as in a plain broker. Pure logic, no broker calls.

#include <string_view>

#include "server/topics.h"

namespace mqttspec::server::embedded {

enum class Access { kRead, kWrite, kSubscribe, kUnsubscribe };

// True when `client_id` may use `topic` (a topic, or a filter for subscribe/unsubscribe).
// Shared-subscription filters ($share/<group>/<filter>) are judged by their inner filter.
bool AclAllows(std::string_view prefix, std::string_view client_id, Access access,
               std::string_view topic);

using server::IsValidClientId;  // server/topics.h

}  // namespace mqttspec::server::embedded
