#include "server/service.h"

#include <spdlog/spdlog.h>

#include <thread>

#include "hooks/hook_context.h"
#include "protocol/render.h"
#include "protocol/request.h"
#include "server/topics.h"

namespace mqttspec::server {

Service::Service(const Config& config, Core& core, Transport& notifications)
    : twin_outbox_(std::make_unique<TwinOutbox>(config.topic_prefix, notifications)),
      core_(core),
      router_(core.router()),
      limiter_(config.limits.requests_per_second_per_client),
      partitions_(config.broker.partition_index, config.broker.partition_count) {
  feed_ = std::make_unique<ChangeFeed>(
      core.subscriptions(), notifications, config.qos.notification, kChangeQueueCapacity, &events_,
      ReplayPace{config.changes.replay_rate, static_cast<size_t>(config.changes.replay_burst)});
  if (core.database().shares_log()) {
    follower_ = std::make_unique<LogFollower>(core.database(), core.models(), *feed_);
    core.database().SetChangeListener(follower_.get());
  } else {
    core.database().SetChangeListener(feed_.get());
  }
  if (config.cluster.enabled) {
    if (auto store = core.database().OpenClusterStore()) {
      cluster_ = std::make_unique<Cluster>(config.cluster, std::move(store), core.database(),
                                           core.models(), core.subscriptions(), *feed_, partitions_,
                                           notifications);
      core.subscriptions().set_keeper(cluster_.get());
    }
  }
  int workers = config.workers > 0
                    ? config.workers
                    : std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
  executor_ = std::make_unique<ClientExecutor>(workers);
}

Service::~Service() {
  feed_->StopReplays();  // a long replay would hold the executor up
  if (cluster_) cluster_->Stop();  // no heartbeat, no adoption from here on
  executor_.reset();               // no more writes
  core_.database().SetChangeListener(nullptr);
  follower_.reset();  // nothing ends subscriptions (keeper->Forget) from here on
  if (cluster_) {
    core_.subscriptions().set_keeper(nullptr);
    cluster_.reset();  // the last checkpoints (the feed still runs); the lease ends
  }
  feed_.reset();  // publishes what is queued
}

Status Service::RunClientHooks(HookType type, ClientInfo& client) {
  if (!core_.hooks().Has(type)) return OkStatus();
  protocol::ParseLimits limits;
  hooks::RequestHookContext ctx(client, "", nullptr, nullptr, limits);
  ctx.set_type(type);
  return core_.hooks().Run(type, "", ctx, ctx.state());
}

Status Service::Authenticate(ClientInfo& client) {
  return RunClientHooks(HookType::kBeforeConnect, client);
}

void Service::PublishClientEvent(const char* kind, const std::string& client_id) {
  if (!events_.active()) return;
  Event e;
  e.kind = kind;
  e.time_ms = Events::NowMillis();
  e.client_id = client_id;
  events_.Publish(std::move(e));
}

void Service::OnClientConnected(std::shared_ptr<ClientInfo> client, bool clean) {
  client->password.clear();
  std::string id = client->id;
  core_.clients().Put(client);
  PublishClientEvent("connect", id);
  executor_->Post(id, [this, client = std::move(client), clean] {
    if (clean) core_.subscriptions().RemoveClient(client->id);
    if (auto st = RunClientHooks(HookType::kAfterConnect, *client); !st.ok())
      spdlog::warn("AfterConnect hook for '{}': {}", client->id, st.error().message);
  });
}

Status Service::AdmitCaller(std::shared_ptr<ClientInfo> client) {
  if (auto st = Authenticate(*client); !st.ok()) return st;
  client->password.clear();
  std::string id = client->id;
  core_.clients().Put(client, /*connected=*/false);
  PublishClientEvent("connect", id);
  executor_->Post(id, [this, client = std::move(client)] {
    if (auto st = RunClientHooks(HookType::kAfterConnect, *client); !st.ok())
      spdlog::warn("AfterConnect hook for '{}': {}", client->id, st.error().message);
  });
  return OkStatus();
}

void Service::OnClientDisconnected(std::shared_ptr<ClientInfo> client, bool clean) {
  std::string id = client->id;
  PublishClientEvent("disconnect", id);
  executor_->Post(id, [this, client = std::move(client), clean] {
    const std::string& client_id = client->id;
    if (auto st = RunClientHooks(HookType::kBeforeDisconnect, *client); !st.ok())
      spdlog::warn("BeforeDisconnect hook for '{}': {}", client_id, st.error().message);
    if (clean) core_.subscriptions().RemoveClient(client_id);
    if (auto st = RunClientHooks(HookType::kAfterDisconnect, *client); !st.ok())
      spdlog::warn("AfterDisconnect hook for '{}': {}", client_id, st.error().message);
    core_.clients().Remove(client);
  });
}

void Service::Submit(Caller caller, std::string payload, Completion done) {
  Enqueue(std::move(caller), std::move(payload), std::move(done), nullptr);
}

void Service::SubmitTwin(Caller caller, Router::TwinMessage message, std::string payload,
                         Completion done) {
  Enqueue(std::move(caller), std::move(payload), std::move(done),
          std::make_shared<const Router::TwinMessage>(std::move(message)));
}

void Service::Enqueue(Caller caller, std::string payload, Completion done,
                      std::shared_ptr<const Router::TwinMessage> twin) {
  taken_.fetch_add(1, std::memory_order_relaxed);
  const bool admitted = limiter_.Admit(caller.client_id);
  if (!admitted) rate_limited_.fetch_add(1, std::memory_order_relaxed);
  std::string client = caller.client_id;
  const bool run_here = caller.run_here;
  const auto taken = std::chrono::steady_clock::now();
  // After the request: metrics, the answer, a resumed subscription — on the client's strand, in
  // its order; for a write perhaps as the continuation of its task, after its commit.
  auto finish = [this, client_id = caller.client_id, done = std::move(done), taken](
                    std::string answer, Router::Outcome& outcome) {
    // Counted before the answer leaves: whoever has the answer sees it in the metrics.
    Record(client_id, outcome, std::chrono::steady_clock::now() - taken);
    AwaitTurn();  // answers leave in the client's order (its earlier writes may still wait)
    // Twin requests go to the broker before the answer, on the same transport in order: when
    // the app has its answer, the device's request has reached the broker.
    if (!outcome.deliveries.empty()) twin_outbox_->Deliver(std::move(outcome.deliveries));
    done(std::move(answer));
    answered_.fetch_add(1, std::memory_order_relaxed);
    // A resumed subscription replays after its answer, on the client's strand.
    if (outcome.resume) feed_->Resume(outcome.resume, outcome.resume_after, core_.database());
  };
  ClientExecutor::Task task = [this, caller = std::move(caller), admitted,
                               payload = std::move(payload), finish = std::move(finish),
                               twin = std::move(twin)]() mutable {
    Router::Outcome outcome;
    if (!admitted) {
      const std::string where = twin ? twin->topic + ": " : std::string();
      std::string answer = protocol::RenderError(
          twin ? std::string("\"\"") : protocol::RequestIdJson(payload),
          MakeError(ErrorCode::kRateLimited, where + "too many requests; slow down"));
      outcome.code = ErrorCodeName(ErrorCode::kRateLimited);
      return finish(std::move(answer), outcome);
    }
    auto info = core_.clients().Get(caller.client_id, caller.username);
    if (twin) return finish(router_.HandleTwin(*info, *twin, payload, &outcome), outcome);
    // A write suspends this task while it waits for its group commit: the answer follows as
    // its continuation, which keeps the client's info alive.
    ClientInfo& client = *info;
    router_.Handle(
        client, std::move(payload),
        [info = std::move(info), finish = std::move(finish)](
            std::string answer, Router::Outcome& outcome) { finish(std::move(answer), outcome); },
        /*suspend=*/true);
  };
  if (run_here && executor_->TryRunHere(client, task)) return;
  executor_->Post(client, std::move(task), /*pipelined=*/true);
}

void Service::Record(const std::string& client_id, const Router::Outcome& outcome,
                     std::chrono::steady_clock::duration took) {
  const std::string_view front = IsReservedClientId(client_id) ? "grpc" : "mqtt";
  const double seconds = std::chrono::duration<double>(took).count();
  metrics_.RecordRequest(front, outcome.operation, outcome.code, seconds);
  if (!events_.active()) return;
  Event e;
  e.kind = "request";
  e.time_ms = Events::NowMillis();
  e.client_id = client_id;
  if (outcome.model) {
    e.schema = outcome.model->schema();
    e.entity = outcome.model->entity();
  }
  e.operation = outcome.operation;
  e.code = outcome.code;
  e.front = front;
  e.duration_ms = seconds * 1000;
  events_.Publish(std::move(e));
}

std::vector<Metrics::Sample> Service::CollectMetrics() const {
  Metrics::Gauges g;
  g.clients_connected = static_cast<double>(core_.clients().connected_count());
  g.subscriptions = static_cast<double>(core_.subscriptions().size());
  const uint64_t taken = taken_.load(), answered = answered_.load();
  g.queue_depth = static_cast<double>(taken > answered ? taken - answered : 0);
  g.notifications_total = static_cast<double>(feed_->stats().notifications);
  return metrics_.Collect(g);
}

void Service::Drain() {
  executor_->Drain();
  feed_->Drain();
}

Service::Stats Service::stats() const {
  return Stats{taken_.load(), answered_.load(), rate_limited_.load(), limiter_.tracked()};
}

}  // namespace mqttspec::server
