#include "server/events.h"

#include <algorithm>

namespace mqttspec::server {

bool EventFilter::Matches(const Event& e) const {
  if (!kind.empty() && kind != e.kind) return false;
  if (!client_id.empty() && client_id != e.client_id) return false;
  if (!entity.empty() && entity != e.entity && entity != e.schema + "." + e.entity) return false;
  return true;
}

bool EventWatch::Next(std::vector<Event>* out, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  ready_.wait_for(lock, timeout, [&] { return !queue_.empty() || dropped_; });
  for (Event& e : queue_) out->push_back(std::move(e));
  queue_.clear();
  return !dropped_;
}

std::shared_ptr<EventWatch> Events::Watch(EventFilter filter) {
  auto watch = std::make_shared<EventWatch>(std::move(filter));
  std::lock_guard lock(mu_);
  list_.push_back(watch);
  watchers_.store(list_.size());
  return watch;
}

void Events::Unwatch(const std::shared_ptr<EventWatch>& watch) {
  std::lock_guard lock(mu_);
  list_.erase(std::remove(list_.begin(), list_.end(), watch), list_.end());
  watchers_.store(list_.size());
}

void Events::Publish(Event event) {
  std::lock_guard lock(mu_);
  for (auto it = list_.begin(); it != list_.end();) {
    EventWatch& w = **it;
    bool drop = false;
    if (w.filter_.Matches(event)) {
      std::lock_guard wl(w.mu_);
      if (w.queue_.size() >= kWatchCapacity) {
        w.dropped_ = drop = true;
      } else {
        w.queue_.push_back(event);
      }
      w.ready_.notify_one();
    }
    it = drop ? list_.erase(it) : it + 1;
  }
  watchers_.store(list_.size());
}

int64_t Events::NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace mqttspec::server
