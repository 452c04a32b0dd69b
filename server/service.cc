#include "server/service.h"

#include <spdlog/spdlog.h>

#include <thread>

#include "hooks/hook_context.h"
#include "protocol/render.h"
#include "protocol/request.h"
#include "server/topics.h"

namespace mqttspec::server {

Service::Service(const Config& config, Core& core, Publisher& publisher)
    : prefix_(config.topic_prefix),
      response_qos_(config.qos.response),
      rate_per_s_(config.limits.requests_per_second_per_client),
      core_(core),
      router_(core.router()),
      publisher_(publisher) {
  feed_ = std::make_unique<ChangeFeed>(core.subscriptions(), publisher, config.qos.notification,
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

void Service::OnClientDisconnected(const std::string& client_id, bool clean) {
  executor_->Post(client_id, [this, client_id, clean] {
    auto client = core_.clients().Get(client_id);
    if (auto st = RunClientHooks(HookType::kBeforeDisconnect, *client); !st.ok())
      spdlog::warn("BeforeDisconnect hook for '{}': {}", client_id, st.error().message);
    if (clean) core_.subscriptions().RemoveClient(client_id);
    if (auto st = RunClientHooks(HookType::kAfterDisconnect, *client); !st.ok())
      spdlog::warn("AfterDisconnect hook for '{}': {}", client_id, st.error().message);
    core_.clients().Remove(client_id);
  });
}

std::optional<std::string_view> Service::ClientOfTopic(std::string_view topic) const {
  return ClientOfRequestTopic(prefix_, topic);
}

bool Service::Admit(const std::string& client) {
  if (rate_per_s_ <= 0) return true;
  // Token bucket: holds up to one second's worth of requests, and at least one (a rate below 1/s
  // would otherwise refuse everything); refills at the rate.
  const double burst = std::max(1.0, rate_per_s_);
  const auto full_after = std::chrono::duration<double>(burst / rate_per_s_);
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(buckets_mu_);
  // An idle bucket that has refilled is the same as no bucket: drop those now and then, so the
  // table holds only the clients of the last second or so (of the last 1/rate s below 1/s).
  if (now - last_prune_ >= full_after) {
    last_prune_ = now;
    std::erase_if(buckets_, [&](const auto& kv) { return now - kv.second.last >= full_after; });
  }
  auto [it, inserted] = buckets_.try_emplace(client, Bucket{burst, now});
  Bucket& b = it->second;
  if (!inserted) {
    double elapsed = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min(burst, b.tokens + elapsed * rate_per_s_);
    b.last = now;
  }
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

void Service::OnMessage(InboundMessage msg) {
  auto client_view = ClientOfTopic(msg.topic);
  if (!client_view) {
    dropped_topics_.fetch_add(1, std::memory_order_relaxed);
    spdlog::debug("dropped a message on malformed topic '{}'", msg.topic.substr(0, 200));
    return;
  }
  std::string client(*client_view);
  taken_.fetch_add(1, std::memory_order_relaxed);
  OutboundMessage out;
  out.qos = response_qos_;
  out.correlation_data = std::move(msg.correlation_data);
  // An MQTT 5 response topic is honoured only where the client may subscribe in its own tree.
  if (!msg.response_topic.empty() &&
      IsOwnReplyTopic(prefix_, client, msg.response_topic, /*filter=*/false)) {
    out.topic = std::move(msg.response_topic);
  } else {
    out.topic = prefix_ + "/" + client + "/response";
  }
  const bool admitted = Admit(client);
  if (!admitted) rate_limited_.fetch_add(1, std::memory_order_relaxed);
  executor_->Post(client, [this, client, admitted, payload = std::move(msg.payload),
                           username = std::move(msg.username), out = std::move(out)]() mutable {
    if (admitted) {
      auto info = core_.clients().Get(client);
      if (info->username.empty() && !username.empty()) info->username = username;
      out.payload = router_.Handle(*info, payload);
    } else {
      out.payload =
          protocol::RenderError(protocol::RequestIdJson(payload),
                                MakeError(ErrorCode::kRateLimited, "too many requests; slow down"));
    }
    publisher_.Publish(std::move(out));
    answered_.fetch_add(1, std::memory_order_relaxed);
  });
}

void Service::Drain() {
  executor_->Drain();
  feed_->Drain();
}

Service::Stats Service::stats() const {
  Stats s{taken_.load(), answered_.load(), dropped_topics_.load(), rate_limited_.load(), 0};
  std::lock_guard lock(buckets_mu_);
  s.rate_buckets = buckets_.size();
  return s;
}

}  // namespace mqttspec::server
