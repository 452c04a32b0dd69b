#include "server/notification_routes.h"

#include "server/topics.h"

namespace mqttspec::server {

NotificationRoutes::NotificationRoutes(const std::string& prefix, Transport& broker)
    : grpc_prefix_(prefix + "/" + std::string(kGrpcClientPrefix)), broker_(broker) {}

void NotificationRoutes::Publish(OutboundMessage m) {
  if (m.topic.compare(0, grpc_prefix_.size(), grpc_prefix_) != 0) {
    broker_.Publish(std::move(m));
    return;
  }
  std::lock_guard lock(mu_);
  if (auto it = routes_.find(m.topic); it != routes_.end()) it->second(std::move(m));
}

void NotificationRoutes::Add(const std::string& topic, Sink sink) {
  std::lock_guard lock(mu_);
  routes_[topic] = std::move(sink);
}

void NotificationRoutes::Remove(const std::string& topic) {
  std::lock_guard lock(mu_);
  routes_.erase(topic);
}

}  // namespace mqttspec::server
