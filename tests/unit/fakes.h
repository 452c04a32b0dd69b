#pragma once
// Test doubles shared by the unit tests.

#include <mutex>
#include <vector>

#include "server/transport.h"

namespace mqttspec::server {

// A Transport that keeps what would go to the broker, in order.
class RecordingTransport : public Transport {
 public:
  void Publish(OutboundMessage m) override {
    std::lock_guard l(mu);
    sent.push_back(std::move(m));
  }
  std::mutex mu;  // guards sent
  std::vector<OutboundMessage> sent;
};

}  // namespace mqttspec::server
