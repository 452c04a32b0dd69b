#include "server/recorded_keys.h"

#include <algorithm>
#include <functional>

namespace mqttspec::server {

RecordedKeys::RecordedKeys(int64_t window_ms, size_t capacity)
    : slice_ms_(std::max<int64_t>(1000, window_ms / kSlices)), capacity_(capacity) {}

uint64_t RecordedKeys::Hash(std::string_view client_id, std::string_view request_id) {
  const uint64_t a = std::hash<std::string_view>{}(client_id);
  const uint64_t b = std::hash<std::string_view>{}(request_id);
  return a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
}

void RecordedKeys::Add(uint64_t hash, int64_t expires_at_ms, int64_t now_ms) {
  std::lock_guard lock(mu_);
  Expire(now_ms);
  if (expires_at_ms > open_until_) {
    if (!open_.empty()) Seal();
    open_until_ = expires_at_ms + slice_ms_;
  }
  open_.insert(hash);
  Shrink();
}

bool RecordedKeys::MayContain(uint64_t hash, int64_t now_ms) {
  std::lock_guard lock(mu_);
  Expire(now_ms);
  if (now_ms <= unknown_until_ || open_.count(hash)) return true;
  return std::any_of(sealed_.begin(), sealed_.end(), [&](const Slice& s) {
    return std::binary_search(s.sorted.begin(), s.sorted.end(), hash);
  });
}

void RecordedKeys::UnknownUntil(int64_t until_ms) {
  std::lock_guard lock(mu_);
  unknown_until_ = std::max(unknown_until_, until_ms);
}

size_t RecordedKeys::size() {
  std::lock_guard lock(mu_);
  return sealed_size_ + open_.size();
}

void RecordedKeys::Seal() {
  Slice s{open_until_, std::vector<uint64_t>(open_.begin(), open_.end())};
  std::sort(s.sorted.begin(), s.sorted.end());
  sealed_size_ += s.sorted.size();
  sealed_.push_back(std::move(s));
  open_.clear();
}

void RecordedKeys::Expire(int64_t now_ms) {
  while (!sealed_.empty() && sealed_.front().until_ms < now_ms) {
    sealed_size_ -= sealed_.front().sorted.size();
    sealed_.pop_front();
  }
  if (open_until_ < now_ms) open_.clear();
}

void RecordedKeys::Shrink() {
  while (sealed_size_ + open_.size() > capacity_) {
    if (sealed_.empty()) {  // the open slice alone is too big: forget it too
      unknown_until_ = std::max(unknown_until_, open_until_);
      open_.clear();
      return;
    }
    unknown_until_ = std::max(unknown_until_, sealed_.front().until_ms);
    sealed_size_ -= sealed_.front().sorted.size();
    sealed_.pop_front();
  }
}

}  // namespace mqttspec::server
