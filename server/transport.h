#pragma once
// The seam between the core and a broker. A transport turns broker events into calls on the core
// (Service::OnMessage) and publishes what the core hands back. Implementations: PahoTransport
// (external broker), and the embedded Mosquitto plugin.

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

// One PUBLISH for the broker to send.
// Both transports publish it through the broker's normal routing: it reaches the subscribers of
// `topic` that the broker's READ access check lets read it (in embedded mode, acl.h: only the
// client whose tree <prefix>/<client>/… holds the topic).
struct OutboundMessage {
  std::string topic;
  std::string payload;
  int qos = 1;
  std::string correlation_data;  // MQTT 5 Correlation Data to echo, if any
};

// Where the core's answers go. Thread-safety: Publish is called from worker threads,
// concurrently; implementations hand the message to their broker thread as needed.
class Publisher {
 public:
  virtual ~Publisher() = default;
  virtual void Publish(OutboundMessage message) = 0;
};

}  // namespace mqttspec::server
