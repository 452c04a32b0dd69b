#include "server/dedup_cache.h"

#include <algorithm>

namespace mqttspec::server {

void DedupCache::Expire(std::chrono::steady_clock::time_point now) {
  while (!entries_.empty() &&
         (now - entries_.front().at > window_ || entries_.size() > capacity_)) {
    if (now - entries_.front().at <= window_)  // forgotten for capacity, within the window
      incomplete_until_ = std::max(incomplete_until_, entries_.front().at + window_);
    index_.erase(entries_.front().key);
    entries_.pop_front();
  }
}

std::optional<std::string> DedupCache::Find(const std::string& key, std::string_view payload) {
  std::lock_guard lock(mu_);
  Expire(std::chrono::steady_clock::now());
  auto it = index_.find(key);
  if (it == index_.end() || it->second->payload != payload) return std::nullopt;
  return it->second->response;
}

bool DedupCache::Complete() {
  std::lock_guard lock(mu_);
  return std::chrono::steady_clock::now() >= incomplete_until_;
}

void DedupCache::Remember(std::string key, std::string payload, std::string response) {
  std::lock_guard lock(mu_);
  auto now = std::chrono::steady_clock::now();
  if (auto it = index_.find(key); it != index_.end()) {
    entries_.erase(it->second);
    index_.erase(it);
  }
  entries_.push_back(Entry{key, std::move(payload), std::move(response), now});
  index_.emplace(std::move(key), std::prev(entries_.end()));
  Expire(now);
}

}  // namespace mqttspec::server
