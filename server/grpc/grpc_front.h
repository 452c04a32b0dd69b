#pragma once
// GrpcFront: the gRPC server on admin.listen — the admin API (mqttspec.admin.v1.Admin,
// admin_service.h), the data API (mqttspec.v1.Query: Read, Create,
// Update, Delete, Meta, and the Subscribe stream: its notifications arrive through
// NotificationRoutes; a cancelled stream ends its subscription), grpc.health.v1.Health and server
// reflection. A Query call becomes the
// same request an MQTT client would publish and goes through Service::Submit: the same parser,
// registry checks, hooks, limits and dedup. The caller acts as client id "grpc:<name>", <name>
// from the call metadata `mqttspec-client` (default "grpc"). With admin.token set, every call
// needs `authorization: Bearer <token>` (else UNAUTHENTICATED); the data API is served only with a
// token. grpc.health.v1.Health says SERVING only while the database answers and the broker is
// reachable: a health thread checks both every second (every 200 ms while not serving). Errors are gRPC status codes with
// the protocol's code in the trailing metadata `mqttspec-error-code`. With admin.tls the server
// speaks TLS (and with its ca_file requires client certificates).
// It runs on gRPC's own threads, never on the broker's (embedded mode starts it in the plugin).
// Thread-safety: Start/destroy from one thread; calls are served concurrently.

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/error.h"
#include "server/config.h"
#include "server/grpc/admin_service.h"
#include "server/notification_routes.h"
#include "server/service.h"

namespace grpc {
class Server;
}

namespace mqttspec::server {

class QueryService;

class GrpcFront {
 public:
  // Listens on config.admin.listen; nullptr when it is "" (off). Errors: unavailable naming
  // admin.listen when it cannot listen there.
  // `broker`: the transport to the broker (kicks, whether it is connected).
  static Result<std::unique_ptr<GrpcFront>> Start(const Config& config, Service& service,
                                                  NotificationRoutes& routes, Transport& broker);
  ~GrpcFront();  // stops taking calls, finishes those running

  int port() const { return port_; }

 private:
  GrpcFront() = default;
  void WatchHealth(Service& service, Transport& broker);  // the health thread

  HealthState health_;
  std::unique_ptr<QueryService> query_;
  std::unique_ptr<AdminService> admin_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::mutex mu_;  // guards stopping_
  std::condition_variable stop_;
  bool stopping_ = false;
  std::thread health_thread_;
};

}  // namespace mqttspec::server
