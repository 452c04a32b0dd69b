#pragma once
// TwinOutbox: publishes device twin requests (docs/protocol.md §13) on
// <prefix>/<device>/twin/requests/<key>, QoS 1 — after the commit of an app's change of a request,
// and for a device's twin/get. Requests of one key may be committed by different clients' threads
// in one order and reach the outbox in another: the outbox never publishes a version older than
// one it has published for the key (a get republishes the newest), so a device is never left
// with a request older than the last it received. It remembers the newest version of at most
// kSlots keys (a fixed table, hashed by key, so memory is bounded; a key whose slot another took
// is checked against nothing).
// Thread-safety: Deliver from any thread.

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "server/transport.h"

namespace mqttspec::server {

// One request to publish: the device's id, the key, the request's JSON and its version.
struct TwinDelivery {
  std::string device, key, payload;
  int64_t version = 0;
};

class TwinOutbox {
 public:
  TwinOutbox(std::string prefix, Transport& transport);
  void Deliver(std::vector<TwinDelivery> deliveries);

  uint64_t published() const;
  uint64_t skipped() const;  // older than one published before

 private:
  static constexpr size_t kSlots = 4096;
  struct Slot {
    std::string id;  // "<device>/<key>"
    int64_t version = -1;
  };
  const std::string prefix_;
  Transport& transport_;
  mutable std::mutex mu_;  // slots_ and the publish order
  std::array<Slot, kSlots> slots_;
  uint64_t published_ = 0, skipped_ = 0;
};

}  // namespace mqttspec::server
