#pragma once
// Transport: how the service reaches an MQTT broker. Two implement it — MosquittoTransport
// (embedded: the service inside the broker, server/embedded/) and PahoTransport (external: a Paho
// client of any broker, server/external/). A transport hands each PUBLISH on a request topic to
// MqttFront::OnMessage (server/mqtt_front.h) and publishes what the service hands back: answers
// and change notifications. The core (Service) knows no transport and no topic.

#include <string>

namespace mqttspec::server {

// One PUBLISH received on a request topic, copied out of the broker's buffers.
struct InboundMessage {
  std::string topic;
  std::string payload;
  std::string response_topic;    // MQTT 5 Response Topic, if any
  std::string correlation_data;  // MQTT 5 Correlation Data, if any
  std::string username;
};

// One PUBLISH for the broker to send. Both transports publish it through the broker's normal
// routing: it reaches the subscribers of `topic` that the broker's READ access check lets read
// it (in embedded mode, acl.h: only the client whose tree <prefix>/<client>/… holds the topic).
struct OutboundMessage {
  std::string topic;
  std::string payload;
  int qos = 1;
  std::string correlation_data;  // MQTT 5 Correlation Data to echo, if any
};

// Thread-safety: Publish is called from worker threads, concurrently; implementations hand the
// message to their broker connection as needed.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual void Publish(OutboundMessage message) = 0;

  // For the admin API. Kick: the broker disconnects `client_id` (embedded mode, on the broker's
  // thread soon after); false when this transport cannot (external mode: the broker is someone
  // else's). connected: whether the broker is reachable (embedded: the service is the broker).
  virtual bool Kick(const std::string& client_id) { return false; }
  virtual bool connected() const { return true; }

  // Delivery progress, for checkpoints of what reached the broker (server/cluster.h): how many
  // messages Publish has taken so far, and how many of them are settled — acknowledged by the
  // broker, refused, or beyond tracking (QoS 0; those in flight when a connection was lost). MQTT
  // acknowledges QoS 1 publishes in order, so settled() >= n means the first n are settled.
  // A transport that does not track delivery reports 0 and 0.
  virtual uint64_t taken() const { return 0; }
  virtual uint64_t settled() const { return 0; }
};

}  // namespace mqttspec::server
