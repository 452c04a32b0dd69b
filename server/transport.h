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
struct OutboundMessage {
  std::string client_id;  // the client it is for (embedded mode delivers to it directly)
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
