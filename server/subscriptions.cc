#include "server/subscriptions.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "server/matcher.h"
#include "server/topics.h"

namespace mqttspec::server {

using adapters::FilterList;
using adapters::Logic;
using adapters::Op;
using registry::FieldType;

std::string CanonicalKey(FieldType type, const Value& v) {
  switch (v.index()) {
    case 0: return "n";
    case 1: return std::get<bool>(v) ? "i1" : "i0";
    case 2: return "i" + std::to_string(std::get<int64_t>(v));
    case 3: {
      double d = std::get<double>(v);
      if (std::trunc(d) == d && std::fabs(d) < 9.2e18)
        return "i" + std::to_string(static_cast<int64_t>(d));
      return fmt::format("d{}", d);
    }
    default: return "s" + std::get<std::string>(v);
  }
  (void)type;
}

namespace {
std::string NewId() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("sub-{:016x}", rng());
}
}  // namespace

Subscriptions::Subscriptions(std::string topic_prefix, int max_per_client)
    : prefix_(std::move(topic_prefix)), max_per_client_(max_per_client) {}

std::string Subscriptions::EntityKey(const registry::Model& m) { return m.qualified_name(); }

std::pair<int, std::vector<std::string>> Subscriptions::IndexKeys(const registry::Model& m,
                                                                  const FilterList& filters) {
  // Only a pure AND list can be filed under one of its conditions: with an OR anywhere at the
  // top level, a row could match without satisfying that condition.
  for (size_t i = 1; i < filters.size(); ++i) {
    if (filters[i].logic == Logic::kOr) return {-1, {}};
  }
  int best = -1;
  std::vector<std::string> keys;
  for (const auto& n : filters) {
    if (n.is_group) continue;
    const auto& c = n.cond;
    if (c.op != Op::kEq && c.op != Op::kIn) continue;
    if (c.values.empty()) continue;
    // Prefer eq (one key) over in (several).
    if (best >= 0 && (keys.size() <= c.values.size())) continue;
    best = c.field;
    keys.clear();
    for (const Value& v : c.values)
      keys.push_back(CanonicalKey(m.field(static_cast<size_t>(c.field)).type, v));
    if (keys.size() == 1) break;
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return {best, keys};
}

Result<SubscriptionPtr> Subscriptions::Add(const std::string& client_id, registry::ModelPtr model,
                                           FilterList filters, bool live) {
  auto sub = std::make_shared<Subscription>();
  sub->client_id = client_id;
  sub->model = std::move(model);
  sub->filters = std::move(filters);
  // Every change whose commit the caller could have seen (its writer's answer follows the
  // numbering) is numbered by now: none of them reaches this subscription.
  sub->after = live ? changes_.load() : Subscription::kReplaying;
  std::lock_guard lock(mu_);
  auto& mine = by_client_[client_id];
  if (static_cast<int>(mine.size()) >= max_per_client_) {
    if (mine.empty()) by_client_.erase(client_id);
    return MakeError(ErrorCode::kTooManySubscriptions,
                     fmt::format("a client may hold at most {} subscriptions", max_per_client_));
  }
  do sub->id = NewId();
  while (by_id_.count(sub->id));
  InsertLocked(sub);
  return sub;
}

Result<SubscriptionPtr> Subscriptions::Adopt(const std::string& id, const std::string& client_id,
                                             registry::ModelPtr model, FilterList filters,
                                             uint64_t seq) {
  auto sub = std::make_shared<Subscription>();
  sub->id = id;
  sub->client_id = client_id;
  sub->model = std::move(model);
  sub->filters = std::move(filters);
  sub->after = Subscription::kReplaying;
  sub->seq = seq;
  std::lock_guard lock(mu_);
  if (by_id_.count(id)) return MakeError(ErrorCode::kConflict, "subscription " + id + " exists");
  InsertLocked(sub);
  return sub;
}

void Subscriptions::InsertLocked(const SubscriptionPtr& sub) {
  auto [field, keys] = IndexKeys(*sub->model, sub->filters);
  sub->topic = NotifyTopic(prefix_, sub->client_id, sub->id);
  by_id_.emplace(sub->id, sub);
  by_client_[sub->client_id].push_back(sub->id);
  EntityIndex& idx = entities_[EntityKey(*sub->model)];
  if (field < 0) {
    idx.scan.push_back(sub);
  } else {
    auto& values = idx.by_value[field];
    for (const auto& k : keys) values[k].push_back(sub);
  }
}

void Subscriptions::Unindex(const SubscriptionPtr& sub) {
  auto eit = entities_.find(EntityKey(*sub->model));
  if (eit == entities_.end()) return;
  EntityIndex& idx = eit->second;
  auto drop = [&](std::vector<SubscriptionPtr>& v) {
    v.erase(std::remove(v.begin(), v.end(), sub), v.end());
  };
  auto [field, keys] = IndexKeys(*sub->model, sub->filters);
  if (field < 0) {
    drop(idx.scan);
  } else if (auto fit = idx.by_value.find(field); fit != idx.by_value.end()) {
    for (const auto& k : keys) {
      auto vit = fit->second.find(k);
      if (vit == fit->second.end()) continue;
      drop(vit->second);
      if (vit->second.empty()) fit->second.erase(vit);
    }
    if (fit->second.empty()) idx.by_value.erase(fit);
  }
  if (idx.scan.empty() && idx.by_value.empty()) entities_.erase(eit);
}

Status Subscriptions::Remove(const std::string& client_id, const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end() || it->second->client_id != client_id) {
    return MakeError(ErrorCode::kNotFound,
                     fmt::format("no subscription '{}' of this client", id.substr(0, 64)));
  }
  RemoveLocked(it);
  return OkStatus();
}

Result<SubscriptionPtr> Subscriptions::Cancel(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end())
    return MakeError(ErrorCode::kNotFound, fmt::format("no subscription '{}'", id.substr(0, 64)));
  SubscriptionPtr sub = it->second;
  RemoveLocked(it);
  return sub;
}

void Subscriptions::RemoveLocked(std::unordered_map<std::string, SubscriptionPtr>::iterator it) {
  SubscriptionPtr sub = it->second;
  by_id_.erase(it);
  auto& mine = by_client_[sub->client_id];
  mine.erase(std::remove(mine.begin(), mine.end(), sub->id), mine.end());
  if (mine.empty()) by_client_.erase(sub->client_id);
  Unindex(sub);
}

bool Subscriptions::Has(const std::string& id) const {
  std::lock_guard lock(mu_);
  return by_id_.count(id) != 0;
}

std::vector<SubscriptionPtr> Subscriptions::List(const std::string& client_id,
                                                 const std::string& entity) const {
  std::vector<SubscriptionPtr> out;
  std::lock_guard lock(mu_);
  for (const auto& [id, sub] : by_id_) {
    if (!client_id.empty() && sub->client_id != client_id) continue;
    if (!entity.empty() && entity != sub->model->entity() &&
        entity != sub->model->qualified_name())
      continue;
    out.push_back(sub);
  }
  std::sort(out.begin(), out.end(), [](const SubscriptionPtr& a, const SubscriptionPtr& b) {
    return a->client_id != b->client_id ? a->client_id < b->client_id : a->id < b->id;
  });
  return out;
}

size_t Subscriptions::RemoveClient(const std::string& client_id) {
  std::lock_guard lock(mu_);
  auto it = by_client_.find(client_id);
  if (it == by_client_.end()) return 0;
  size_t n = 0;
  for (const auto& id : it->second) {
    auto sit = by_id_.find(id);
    if (sit == by_id_.end()) continue;
    SubscriptionPtr sub = sit->second;
    by_id_.erase(sit);
    Unindex(sub);
    ++n;
  }
  by_client_.erase(it);
  return n;
}

std::vector<SubscriptionPtr> Subscriptions::Match(const registry::Model& m, const Row& row) const {
  std::vector<SubscriptionPtr> candidates;
  {
    std::lock_guard lock(mu_);
    auto eit = entities_.find(EntityKey(m));
    if (eit == entities_.end()) return {};
    const EntityIndex& idx = eit->second;
    candidates = idx.scan;
    for (const auto& [field, values] : idx.by_value) {
      const Value& v = row[static_cast<size_t>(field)];
      if (IsNull(v)) continue;
      auto vit = values.find(CanonicalKey(m.field(static_cast<size_t>(field)).type, v));
      if (vit != values.end())
        candidates.insert(candidates.end(), vit->second.begin(), vit->second.end());
    }
  }
  std::vector<SubscriptionPtr> out;
  out.reserve(candidates.size());
  for (auto& s : candidates) {
    if (Matches(m, s->filters, row)) out.push_back(std::move(s));
  }
  return out;
}

size_t Subscriptions::size() const {
  std::lock_guard lock(mu_);
  return by_id_.size();
}

size_t Subscriptions::count(const std::string& client_id) const {
  std::lock_guard lock(mu_);
  auto it = by_client_.find(client_id);
  return it == by_client_.end() ? 0 : it->second.size();
}

}  // namespace mqttspec::server
