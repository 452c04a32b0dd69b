#include "server/service.h"

#include <spdlog/spdlog.h>

#include <thread>

#include "hooks/hook_context.h"
#include "protocol/render.h"
#include "protocol/request.h"

namespace mqttspec::server {

Service::Service(const Config& config, Core& core, Transport& notifications)
    : core_(core), router_(core.router()), limiter_(config.limits.requests_per_second_per_client) {
  feed_ = std::make_unique<ChangeFeed>(core.subscriptions(), notifications, config.qos.notification,
                                       kChangeQueueCapacity);
  core.database().SetChangeListener(feed_.get());
  int workers = config.workers > 0
                    ? config.workers
                    : std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
  executor_ = std::make_unique<ClientExecutor>(workers);
}

Service::~Service() {
  executor_.reset();  // no more writes
  core_.database().SetChangeListener(nullptr);
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

void Service::OnClientConnected(std::shared_ptr<ClientInfo> client, bool clean) {
  client->password.clear();
  std::string id = client->id;
  core_.clients().Put(client);
  executor_->Post(id, [this, client = std::move(client), clean] {
    if (clean) core_.subscriptions().RemoveClient(client->id);
    if (auto st = RunClientHooks(HookType::kAfterConnect, *client); !st.ok())
      spdlog::warn("AfterConnect hook for '{}': {}", client->id, st.error().message);
  });
}

void Service::OnClientDisconnected(std::shared_ptr<ClientInfo> client, bool clean) {
  std::string id = client->id;
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
  taken_.fetch_add(1, std::memory_order_relaxed);
  const bool admitted = limiter_.Admit(caller.client_id);
  if (!admitted) rate_limited_.fetch_add(1, std::memory_order_relaxed);
  std::string client = caller.client_id;
  executor_->Post(client, [this, caller = std::move(caller), admitted, payload = std::move(payload),
                           done = std::move(done)] {
    std::string answer;
    if (admitted) {
      auto info = core_.clients().Get(caller.client_id);
      if (info->username.empty() && !caller.username.empty()) info->username = caller.username;
      answer = router_.Handle(*info, payload);
    } else {
      answer =
          protocol::RenderError(protocol::RequestIdJson(payload),
                                MakeError(ErrorCode::kRateLimited, "too many requests; slow down"));
    }
    done(std::move(answer));
    answered_.fetch_add(1, std::memory_order_relaxed);
  });
}

void Service::Drain() {
  executor_->Drain();
  feed_->Drain();
}

Service::Stats Service::stats() const {
  return Stats{taken_.load(), answered_.load(), rate_limited_.load(), limiter_.tracked()};
}

}  // namespace mqttspec::server
