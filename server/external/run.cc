#include "server/external/run.h"

#include <spdlog/spdlog.h>

#include <csignal>
#include <cstring>

#include "server/core.h"
#include "server/exit_codes.h"
#include "server/external/paho_transport.h"
#include "server/grpc/grpc_front.h"
#include "server/grpc/metrics_http.h"
#include "server/mqtt_front.h"
#include "server/service.h"

namespace mqttspec::server {

int RunExternal(const Config& config) {
  // Signals are taken by sigwait below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto core = Core::Create(config);
  if (!core.ok()) return CoreFailure(core.error());
  PahoTransport transport(config.broker, config.qos.request);
  {
    NotificationRoutes routes(config.topic_prefix, transport);  // gRPC streams, else the broker
    Service service(config, *core.value(), routes);
    MqttFront front(config, service, transport);
    auto grpc = GrpcFront::Start(config, service, routes, transport);
    if (!grpc.ok()) return Failure(grpc.error().message);
    auto metrics = MetricsHttp::Start(config, service);
    if (!metrics.ok()) return Failure(metrics.error().message);
    transport.Start(front);
    int sig = 0;
    sigwait(&signals, &sig);
    spdlog::info("received {}, stopping: no new requests, answering those taken", strsignal(sig));
    transport.StopTaking();
    metrics.value().reset();
    grpc.value().reset();  // no new gRPC calls; those running are answered
    service.Drain();
    auto s = service.stats();
    spdlog::info(
        "answered {} of {} requests ({} dropped topics, {} rate limited, {} publishes "
        "failed)",
        s.answered, s.taken, front.dropped_topics(), s.rate_limited, transport.publish_failures());
  }
  transport.Stop(std::chrono::seconds(5));
  spdlog::info("stopped");
  return 0;
}

}  // namespace mqttspec::server
