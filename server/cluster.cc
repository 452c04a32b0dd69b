#include "server/cluster.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <unordered_set>

#include "protocol/filters.h"
#include "protocol/render.h"
#include "server/topics.h"

namespace mqttspec::server {

std::string InstanceId(const ClusterConfig& config) {
  if (!config.instance_id.empty()) return config.instance_id;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "host");
  return fmt::format("{}-{}", host, getpid());
}

Cluster::Cluster(const ClusterConfig& config, std::unique_ptr<adapters::ClusterStore> store,
                 adapters::Database& db, const registry::ModelRegistry& models,
                 Subscriptions& subscriptions, ChangeFeed& feed, Partitions& partitions,
                 Transport& notifications)
    : config_(config),
      id_(InstanceId(config)),
      own_(partitions.held() == ~uint64_t{0} ? 0 : partitions.held()),
      store_(std::move(store)),
      db_(db),
      models_(models),
      subscriptions_(subscriptions),
      feed_(feed),
      partitions_(partitions),
      notifications_(notifications) {
  spdlog::info("cluster: instance '{}', lease {} ms, heartbeat {} ms", id_, config_.lease_ms,
               config_.heartbeat_ms);
  Beat();
  thread_ = std::thread([this] { Run(); });
}

Cluster::~Cluster() {
  Stop();
  Checkpoint(0);                     // the one taken, if settled; then one of now …
  Checkpoint(config_.lease_ms / 2);  // … written once the broker has it all
  if (auto st = store_->Leave(id_); !st.ok())
    spdlog::warn("cluster: leaving: {}", st.error().message);
}

void Cluster::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::vector<std::thread> adopters;
  {
    std::lock_guard lock(mu_);
    adopters.swap(adopters_);
  }
  for (auto& t : adopters) t.join();
}

Status Cluster::Keep(const Subscription& s, int64_t change_seq) {
  if (IsReservedClientId(s.client_id)) return OkStatus();  // gRPC: lives with its stream
  adapters::StoredSubscription row;
  row.id = s.id;
  row.client_id = s.client_id;
  row.schema = s.model->schema();
  row.entity = s.model->entity();
  row.filters = protocol::RenderFilters(*s.model, s.filters);
  row.seq = static_cast<int64_t>(s.seq.load());
  row.change_seq = change_seq;
  return store_->Save(id_, row);
}

Result<bool> Cluster::Forget(const std::string& client_id, const std::string& id) {
  if (IsReservedClientId(client_id)) return false;
  return store_->Remove(client_id, id);
}

void Cluster::Run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::milliseconds(config_.heartbeat_ms));
    if (stopping_) break;
    lock.unlock();
    Beat();
    lock.lock();
  }
}

void Cluster::Beat() {
  auto holding = store_->Heartbeat(id_, own_, config_.lease_ms);
  if (!holding.ok()) {
    spdlog::warn("cluster: heartbeat: {}", holding.error().message);
    return;
  }
  if (holding.value().joined && beats_ > 0) {
    // Taken for dead (the database was out of reach longer than the lease): another instance
    // serves this one's subscriptions now; serving them here too would send them twice.
    spdlog::error(
        "cluster: this instance's lease had run out and its work was adopted; "
        "dropping its subscriptions here");
    for (const SubscriptionPtr& s : subscriptions_.List("", "")) {
      if (!IsReservedClientId(s->client_id)) (void)subscriptions_.Cancel(s->id);
    }
    written_.clear();
    pending_.reset();
  }
  ++beats_;
  // Partitions as the database says: adopted ones added, ones given back gone.
  if (partitions_.count() > 1) {
    const uint64_t now = holding.value().partitions, had = partitions_.held();
    if (now != had) {
      spdlog::info("cluster: partitions {:#x} (were {:#x})", now, had);
      partitions_.Add(now);
      partitions_.Remove(~now);
    }
  }
  // Subscriptions unsubscribed through another instance.
  const std::unordered_set<std::string> kept(holding.value().subscriptions.begin(),
                                             holding.value().subscriptions.end());
  for (const SubscriptionPtr& s : subscriptions_.List("", "")) {
    if (IsReservedClientId(s->client_id)) continue;             // gRPC: not kept
    if (s->after.load() == Subscription::kReplaying) continue;  // being adopted
    if (!kept.count(s->id) &&
        written_.count(s->id)) {  // known to have been kept: unsubscribed elsewhere
      (void)subscriptions_.Cancel(s->id);
      written_.erase(s->id);
    }
  }
  Checkpoint(0);
  auto dead = store_->AdoptExpired(id_);
  if (!dead.ok()) {
    spdlog::warn("cluster: adopting: {}", dead.error().message);
    return;
  }
  for (auto& d : dead.value()) {
    spdlog::warn(
        "cluster: instance '{}' is gone: adopting its {} subscription(s) and partitions "
        "{:#x}",
        d.instance_id, d.subscriptions.size(), d.partitions);
    if (partitions_.count() > 1) partitions_.Add(d.partitions);
    std::lock_guard lock(mu_);
    if (stopping_) break;
    adopters_.emplace_back([this, d = std::move(d)]() mutable { Adopt(std::move(d)); });
  }
}

void Cluster::Checkpoint(int64_t wait_ms) {
  if (pending_) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    while (notifications_.settled() < pending_mark_ && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (notifications_.settled() < pending_mark_) return;  // not yet: next heartbeat
    WriteCheckpoints();
  }
  pending_ = feed_.Checkpoint();           // every notification it covers was Published before …
  pending_mark_ = notifications_.taken();  // … this count was read
}

void Cluster::WriteCheckpoints() {
  std::vector<adapters::SubscriptionCheckpoint> moved;
  for (const auto& [s, seq] : pending_->seqs) {
    if (IsReservedClientId(s->client_id)) continue;
    if (!subscriptions_.Has(s->id)) {
      written_.erase(s->id);
      continue;
    }
    const int64_t through = std::max(pending_->change_seq, s->replayed_through.load());
    auto& w = written_[s->id];
    if (w.first == seq && w.second == through) continue;
    w = {seq, through};
    moved.push_back({s->id, static_cast<int64_t>(seq), through});
  }
  if (auto st = store_->Checkpoint(moved); !st.ok())
    spdlog::warn("cluster: checkpoints: {}", st.error().message);
}

void Cluster::Adopt(adapters::AdoptedInstance dead) {
  protocol::ParseLimits limits;
  limits.max_filters = 1 << 20;  // they were checked when made
  for (const adapters::StoredSubscription& row : dead.subscriptions) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    registry::ModelPtr model = models_.Find(row.schema, row.entity);
    rapidjson::Document doc;
    doc.Parse(row.filters.c_str());
    Result<adapters::FilterList> filters = adapters::FilterList{};
    if (model && !doc.HasParseError())
      filters = protocol::FilterParser(*model, limits).List(doc, 0);
    if (!model || doc.HasParseError() || !filters.ok()) {
      spdlog::error("cluster: subscription {} of '{}' on {}.{} cannot be adopted: {}", row.id,
                    row.client_id, row.schema, row.entity,
                    !model ? "the model is not served here"
                           : (filters.ok() ? "unreadable filters" : filters.error().message));
      continue;
    }
    auto sub = subscriptions_.Adopt(row.id, row.client_id, model, std::move(filters).value(),
                                    static_cast<uint64_t>(row.seq));
    if (!sub.ok()) continue;  // already here
    feed_.Resume(sub.value(), row.change_seq, db_, /*marker=*/false);
  }
}

}  // namespace mqttspec::server
