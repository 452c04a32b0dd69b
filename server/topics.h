#pragma once
// The topic scheme of the service's tree, built and parsed here and nowhere else:
//   <prefix>/<client>/request             requests (clients publish)
//   <prefix>/<client>/response            answers (or an MQTT 5 Response Topic in the tree)
//   <prefix>/<client>/notify/<sub id>     change notifications
// Used by MqttFront, the subscriptions, the embedded plugin and its ACL.

#include <optional>
#include <string>
#include <string_view>

namespace mqttspec::server {

// True when `id` is usable as a client id in topics: 1–128 characters, none of '/', '+', '#' or
// NUL (MOSQUITTO.md §5: the v5 plugin path passes such ids through unfiltered).
bool IsValidClientId(std::string_view id);

// Client ids of the gRPC front ("grpc:<name>"): an MQTT client may not use them, or it would share
// a gRPC caller's state, rate bucket and dedup entries.
inline constexpr std::string_view kGrpcClientPrefix = "grpc:";
bool IsReservedClientId(std::string_view id);

std::string RequestFilter(std::string_view prefix);  // "<prefix>/+/request"
std::string ResponseTopic(std::string_view prefix, std::string_view client);
std::string NotifyTopic(std::string_view prefix, std::string_view client,
                        std::string_view subscription_id);

// True for "<prefix>/<anything>/request": the cheap test every PUBLISH in the broker goes
// through (the client part is checked by ClientOfRequestTopic).
bool IsRequestTopic(std::string_view prefix, std::string_view topic);

// The client id of "<prefix>/<client>/request", or nullopt for any other shape or an invalid id.
std::optional<std::string_view> ClientOfRequestTopic(std::string_view prefix,
                                                     std::string_view topic);

// Where `client` may have answers sent (its MQTT 5 Response Topic): a topic in its own tree,
// "<prefix>/<client>/<level>[/…]" with <level> not "request" (answers must never become requests)
// and no wildcard — so "…/response" and "…/replies/x" qualify.
bool IsOwnReplyTopic(std::string_view prefix, std::string_view client, std::string_view topic);

// The device twin's topics (docs/protocol.md §13), in the device's tree:
//   <prefix>/<device>/twin/requests/<key>   the service → the device: a request's value
//   <prefix>/<device>/twin/reports/<key>    the device → the service: its report
//   <prefix>/<device>/twin/get              the device → the service: a JSON list of keys
// A key is one topic level: 1–128 characters, none of '/', '+', '#' or NUL.
bool IsValidTwinKey(std::string_view key);
struct TwinTopic {
  enum class Kind { kReport, kGet };
  Kind kind = Kind::kReport;
  std::string_view device;
  std::string_view key;  // kReport
};
// A device's twin/reports/<key> or twin/get topic, or nullopt for any other shape or an invalid
// device id or key. No allocation: the embedded ACL calls it for every publish.
std::optional<TwinTopic> ParseTwinTopic(std::string_view prefix, std::string_view topic);
std::string TwinRequestTopic(std::string_view prefix, std::string_view device,
                             std::string_view key);
// What an external-mode instance subscribes to for twin messages.
inline constexpr std::string_view kTwinReportsFilter = "/+/twin/reports/+";
inline constexpr std::string_view kTwinGetFilter = "/+/twin/get";

// The partition of a client among `count` (broker.partition): FNV-1a (32 bits) of the client id,
// modulo count. Stable across instances, versions and machines — documented in docs/cluster.md.
int PartitionOf(std::string_view client_id, int count);

}  // namespace mqttspec::server
