#pragma once
// MetricsHttp: the Prometheus endpoint on admin.metrics_listen — GET /metrics answers the
// Service's figures (server/metrics.h) in the text exposition format; anything else is 404. Served
// by cpp-httplib (Debian's libcpp-httplib-dev) on its own threads, never the broker's.
// Thread-safety: Start/destroy from one thread; requests are served concurrently.

#include <memory>
#include <string>
#include <thread>

#include "common/error.h"
#include "server/config.h"
#include "server/service.h"

namespace httplib {
class Server;
}

namespace mqttspec::server {

class MetricsHttp {
 public:
  // Listens on config.admin.metrics_listen; nullptr when it is "" (off). Errors: unavailable
  // naming admin.metrics_listen when it cannot listen there.
  static Result<std::unique_ptr<MetricsHttp>> Start(const Config& config, Service& service);
  ~MetricsHttp();

  int port() const { return port_; }

 private:
  MetricsHttp() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace mqttspec::server
