#pragma once
// The client SDK's side of the wire protocol (docs/protocol.md): requests rendered from typed
// arguments, answers and notifications parsed into typed values. Pure functions, no state.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mqttspec/client.h"

namespace mqttspec::client {

// Json from text this code wrote itself or has just parsed (no second parse).
struct JsonAccess {
  static Json FromText(std::string text) { return Json(Json::Raw{}, std::move(text)); }
};

namespace wire {

// JSON text of protocol §4's filters array and options object.
std::string FiltersJson(const std::vector<Filter>& filters);
std::string ReadOptionsJson(const ReadOptions& o);
std::string SubscribeOptionsJson(const std::vector<Filter>& filters,
                                 std::optional<int64_t> since_change_seq);

struct RequestParts {
  std::string_view type = "request";  // or "subscription", "ping"
  std::string_view operation;
  const Entity* entity = nullptr;
  const Json* record_id = nullptr;
  const Json* data = nullptr;
  std::string options;          // JSON text, "" for none
  std::string subscription_id;  // unsubscribe
};
std::string RenderRequest(std::string_view id, const RequestParts& parts);

// Why a request cannot be sent (kInvalidRequest), or "" when it can.
std::string CheckEntity(const Entity& e);

struct Incoming {
  enum class Kind { kResponse, kPong, kNotification } kind = Kind::kResponse;
  std::string id;        // response / pong: the request id (a number as its text)
  Reply reply;           // response / pong
  std::string instance;  // pong: the service process that answered ("" if not said)
  // Notifications (protocol §12): the service's own seq (0 for markers).
  std::string subscription_id;
  Notification note;
  bool has_change_seq = false;
  int64_t replayed = 0;
  Error error;  // resync_required notifications
};
// nullopt (and why) for a payload that is none of the three.
std::optional<Incoming> ParseIncoming(std::string_view payload, std::string* why);

}  // namespace wire
}  // namespace mqttspec::client
