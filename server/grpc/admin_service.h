#pragma once
// AdminService: mqttspec.admin.v1.Admin (proto/mqttspec/admin/v1/admin.proto) — what operators
// see and do: status, clients (and kicking one, embedded mode), subscriptions (and cancelling
// one), models, hooks, metrics (the same samples as GET /metrics) and the WatchEvents stream.
// It reads the core's own tables (Clients, Subscriptions, ModelRegistry, HookRegistry) and the
// Service's Metrics and Events; nothing here changes what a request does.
// Thread-safety: calls are served concurrently on gRPC's threads; everything it reads is
// thread-safe (the rules of those classes); `health` is written by GrpcFront's health thread.

#include <atomic>
#include <chrono>
#include <string>

#include "mqttspec/admin/v1/admin.grpc.pb.h"
#include "server/config.h"
#include "server/service.h"
#include "server/transport.h"

namespace mqttspec::server {

// What the health thread last saw (GrpcFront): the database answering, the broker reachable.
struct HealthState {
  std::atomic<bool> database_ok{true}, broker_ok{true};
};

class AdminService final : public mqttspec::admin::v1::Admin::Service {
 public:
  AdminService(const Config& config, server::Service& service, Transport& broker,
               const HealthState& health);

  grpc::Status GetStatus(grpc::ServerContext* c, const admin::v1::GetStatusRequest* r,
                         admin::v1::Status* out) override;
  grpc::Status ListClients(grpc::ServerContext* c, const admin::v1::ListClientsRequest* r,
                           admin::v1::ListClientsResponse* out) override;
  grpc::Status KickClient(grpc::ServerContext* c, const admin::v1::KickClientRequest* r,
                          admin::v1::KickClientResponse* out) override;
  grpc::Status ListSubscriptions(grpc::ServerContext* c,
                                 const admin::v1::ListSubscriptionsRequest* r,
                                 admin::v1::ListSubscriptionsResponse* out) override;
  grpc::Status CancelSubscription(grpc::ServerContext* c,
                                  const admin::v1::CancelSubscriptionRequest* r,
                                  admin::v1::CancelSubscriptionResponse* out) override;
  grpc::Status ListModels(grpc::ServerContext* c, const admin::v1::ListModelsRequest* r,
                          admin::v1::ListModelsResponse* out) override;
  grpc::Status GetModel(grpc::ServerContext* c, const admin::v1::GetModelRequest* r,
                        admin::v1::Model* out) override;
  grpc::Status ListHooks(grpc::ServerContext* c, const admin::v1::ListHooksRequest* r,
                         admin::v1::ListHooksResponse* out) override;
  grpc::Status GetMetrics(grpc::ServerContext* c, const admin::v1::GetMetricsRequest* r,
                          admin::v1::Metrics* out) override;
  grpc::Status WatchEvents(grpc::ServerContext* c, const admin::v1::WatchEventsRequest* r,
                           grpc::ServerWriter<admin::v1::Event>* writer) override;

  void Stop() { stopping_.store(true); }  // open WatchEvents streams end

 private:
  void FillModel(const registry::Model& m, admin::v1::Model* out) const;

  const Config& config_;
  server::Service& service_;
  Core& core_;
  Transport& broker_;
  const HealthState& health_;
  const std::chrono::steady_clock::time_point started_;
  std::atomic<bool> stopping_{false};
};

}  // namespace mqttspec::server
