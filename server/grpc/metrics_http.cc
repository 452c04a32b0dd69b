#include "server/grpc/metrics_http.h"

#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

namespace mqttspec::server {

Result<std::unique_ptr<MetricsHttp>> MetricsHttp::Start(const Config& config, Service& service) {
  const std::string& addr = config.admin.metrics_listen;
  if (addr.empty()) return std::unique_ptr<MetricsHttp>();
  const size_t colon = addr.rfind(':');  // the format was checked by the config parser
  std::string host = addr.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  const int port = std::stoi(addr.substr(colon + 1));

  auto m = std::unique_ptr<MetricsHttp>(new MetricsHttp());
  m->server_ = std::make_unique<httplib::Server>();
  m->server_->new_task_queue = [] { return new httplib::ThreadPool(2); };
  m->server_->Get("/metrics", [&service](const httplib::Request&, httplib::Response& res) {
    res.set_content(Metrics::Prometheus(service.CollectMetrics()),
                    "text/plain; version=0.0.4; charset=utf-8");
  });
  m->port_ = port == 0 ? m->server_->bind_to_any_port(host) : port;
  if (m->port_ <= 0 || (port != 0 && !m->server_->bind_to_port(host, port)))
    return MakeError(ErrorCode::kUnavailable,
                     fmt::format("admin.metrics_listen: cannot listen on {}", addr));
  m->thread_ = std::thread([srv = m->server_.get()] { srv->listen_after_bind(); });
  spdlog::info("metrics: GET /metrics on {} (port {})", addr, m->port_);
  return m;
}

MetricsHttp::~MetricsHttp() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace mqttspec::server
