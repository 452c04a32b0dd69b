#pragma once
// Topic isolation for the service's tree (<prefix>/<client>/…), enforced where messages are
// delivered, so that the broker behaves as a plain Mosquitto everywhere else:
//   publish   inside the tree only to its own <prefix>/<id>/request, and its device twin's
//             <prefix>/<id>/twin/reports/<key> and <prefix>/<id>/twin/get (topics.h)
//   subscribe any filter ('#', '+/+', "<prefix>/#" …): what a filter may *receive* is decided
//             per message at delivery (the broker's READ check, also for retained messages)
//   receive   nothing on any of those topics (they are consumed by the service), and inside the
//             tree only its own <prefix>/<id>/… (responses, notifications, MQTT 5 reply topics,
//             twin/requests/<key>)
// Topics outside the prefix behave as in a plain broker. Pure logic, no broker calls.

#include <string_view>

#include "server/topics.h"

namespace mqttspec::server::embedded {

enum class Access { kRead, kWrite, kSubscribe, kUnsubscribe };

// True when `client_id` may use `topic` (a topic, or a filter for subscribe/unsubscribe).
bool AclAllows(std::string_view prefix, std::string_view client_id, Access access,
               std::string_view topic);

using server::IsValidClientId;  // server/topics.h

}  // namespace mqttspec::server::embedded
