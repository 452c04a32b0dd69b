#include "server/mqtt_front.h"

#include <spdlog/spdlog.h>

#include "server/topics.h"

namespace mqttspec::server {

MqttFront::MqttFront(const Config& config, Service& service, Transport& transport)
    : prefix_(config.topic_prefix),
      request_filter_(RequestFilter(config.topic_prefix)),
      response_qos_(config.qos.response),
      service_(service),
      transport_(transport) {}

void MqttFront::OnMessage(InboundMessage msg) {
  auto client = ClientOfRequestTopic(prefix_, msg.topic);
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
  service_.Submit(Caller{std::string(*client), std::move(msg.username)}, std::move(msg.payload),
                  [this, out = std::move(out)](std::string answer) mutable {
                    out.payload = std::move(answer);
                    transport_.Publish(std::move(out));
                  });
}

}  // namespace mqttspec::server
