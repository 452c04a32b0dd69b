#include "server/twin_outbox.h"

#include <functional>

#include "server/topics.h"

namespace mqttspec::server {

TwinOutbox::TwinOutbox(std::string prefix, Transport& transport)
    : prefix_(std::move(prefix)), transport_(transport) {}

void TwinOutbox::Deliver(std::vector<TwinDelivery> deliveries) {
  std::lock_guard lock(mu_);  // held while publishing: Publish only queues the message
  for (TwinDelivery& d : deliveries) {
    std::string id = d.device + "/" + d.key;
    Slot& slot = slots_[std::hash<std::string>{}(id) % kSlots];
    if (slot.id == id && d.version < slot.version) {
      ++skipped_;
      continue;
    }
    OutboundMessage m;
    m.topic = TwinRequestTopic(prefix_, d.device, d.key);
    m.payload = std::move(d.payload);
    m.qos = 1;
    transport_.Publish(std::move(m));
    ++published_;
    slot.id = std::move(id);
    slot.version = d.version;
  }
}

uint64_t TwinOutbox::published() const {
  std::lock_guard lock(mu_);
  return published_;
}

uint64_t TwinOutbox::skipped() const {
  std::lock_guard lock(mu_);
  return skipped_;
}

}  // namespace mqttspec::server
