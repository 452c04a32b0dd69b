#pragma once
// Topic isolation for the service's tree (<prefix>/<client>/…), decided per client:
//   publish   only to its own <prefix>/<id>/request
//   subscribe only to its own <prefix>/<id>/response, <prefix>/<id>/notify/+ or
//             <prefix>/<id>/notify/<subscription>, and to nothing that could match another
//             client's tree ("#", "<prefix>/#", "<prefix>/+/…", "+/…" …)
//   receive   nothing on any request topic (requests are consumed by the service), and only its
//             own tree otherwise
// Topics outside the prefix behave as in a plain broker. Pure logic, no broker calls.

#include <string_view>

namespace mqttspec::server::embedded {

enum class Access { kRead, kWrite, kSubscribe, kUnsubscribe };

// True when `client_id` may use `topic` (a topic, or a filter for subscribe/unsubscribe).
// Shared-subscription filters ($share/<group>/<filter>) are judged by their inner filter.
bool AclAllows(std::string_view prefix, std::string_view client_id, Access access,
               std::string_view topic);

// True when `id` is usable as a client id in topics: 1–128 characters, none of '/', '+', '#' or
// NUL (MOSQUITTO.md §5: the v5 plugin path passes such ids through unfiltered).
bool IsValidClientId(std::string_view id);

}  // namespace mqttspec::server::embedded
