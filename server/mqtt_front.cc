#include "server/mqtt_front.h"

#include <spdlog/spdlog.h>

#include "server/topics.h"

namespace mqttspec::server {

MqttFront::MqttFront(const Config& config, Service& service, Transport& transport)
    : prefix_(config.topic_prefix),
      request_filter_(RequestFilter(config.topic_prefix)),
      response_qos_(config.qos.response),
      twin_(config.twin.enabled),
      service_(service),
      transport_(transport) {}

bool MqttFront::Takes(std::string_view topic) const {
  return IsRequestTopic(prefix_, topic) || (twin_ && ParseTwinTopic(prefix_, topic));
}

std::vector<std::string> MqttFront::filters() const {
  std::vector<std::string> f{request_filter_};
  if (twin_) {
    f.push_back(prefix_ + std::string(kTwinReportsFilter));
    f.push_back(prefix_ + std::string(kTwinGetFilter));
  }
  return f;
}

void MqttFront::OnMessage(InboundMessage msg) {
  std::optional<std::string_view> client = ClientOfRequestTopic(prefix_, msg.topic);
  std::optional<TwinTopic> twin;
  if (!client && twin_ && (twin = ParseTwinTopic(prefix_, msg.topic))) client = twin->device;
  if (!client || IsReservedClientId(*client)) {  // "grpc:…" ids belong to the gRPC front
    dropped_topics_.fetch_add(1, std::memory_order_relaxed);
    spdlog::debug("dropped a message on malformed topic '{}'", msg.topic.substr(0, 200));
    return;
  }
  if (!service_.partitions().Holds(*client)) return;  // another instance's client (partitions.h)
  OutboundMessage out;
  out.qos = response_qos_;
  out.correlation_data = std::move(msg.correlation_data);
  // An MQTT 5 response topic is honoured only where the client may subscribe in its own tree.
  if (!msg.response_topic.empty() && IsOwnReplyTopic(prefix_, *client, msg.response_topic)) {
    out.topic = std::move(msg.response_topic);
  } else {
    out.topic = ResponseTopic(prefix_, *client);
  }
  Caller caller{std::string(*client), std::move(msg.username)};
  auto answer = [this, out = std::move(out)](std::string answer) mutable {
    if (answer.empty()) return;  // a twin message that went well: nothing to answer
    out.payload = std::move(answer);
    transport_.Publish(std::move(out));
  };
  if (!twin) {
    service_.Submit(std::move(caller), std::move(msg.payload), std::move(answer));
    return;
  }
  Router::TwinMessage m;
  m.origin = twin->kind == TwinTopic::Kind::kGet ? protocol::Request::Origin::kTwinGet
                                                 : protocol::Request::Origin::kTwinReport;
  m.key = std::string(twin->key);
  m.topic = std::move(msg.topic);
  service_.SubmitTwin(std::move(caller), std::move(m), std::move(msg.payload), std::move(answer));
}

}  // namespace mqttspec::server
