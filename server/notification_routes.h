#pragma once
// NotificationRoutes: the Transport the change feed publishes to. A notification for a gRPC
// caller (<prefix>/grpc:<name>/notify/<subscription>) goes to the Subscribe stream registered for
// its topic (server/grpc/); every other message passes on to the broker's transport. A gRPC
// notification whose stream is gone is dropped (its seq gap shows it, should the stream return).
// Thread-safety: Publish from any thread; Add/Remove from any thread; a sink runs on the
// publishing thread and must only queue.

#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

#include "server/transport.h"

namespace mqttspec::server {

class NotificationRoutes : public Transport {
 public:
  using Sink = std::function<void(OutboundMessage)>;

  NotificationRoutes(const std::string& prefix, Transport& broker);

  void Publish(OutboundMessage message) override;
  // The broker's transport's (gRPC streams are not tracked).
  uint64_t taken() const override { return broker_.taken(); }
  uint64_t settled() const override { return broker_.settled(); }
  void Add(const std::string& topic, Sink sink);
  void Remove(const std::string& topic);

 private:
  const std::string grpc_prefix_;  // "<prefix>/grpc:"
  Transport& broker_;
  std::mutex mu_;  // guards routes_
  std::unordered_map<std::string, Sink> routes_;
};

}  // namespace mqttspec::server
