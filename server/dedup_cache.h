#pragma once
// DedupCache: the answers to recent writes, keyed by client and request id, so that a write that
// arrives again (QoS 1 redelivery, a client's retry) with a byte-identical payload within the
// window is answered from the first result instead of being applied twice. Bounded by the window
// and by a capacity (oldest forgotten first).
// Thread-safety: all methods from any thread.

#include <chrono>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace mqttspec::server {

class DedupCache {
 public:
  DedupCache(int window_s, size_t capacity)
      : window_(window_s),
        capacity_(capacity),
        incomplete_until_(std::chrono::steady_clock::now() + window_) {}

  // The earlier response to an identical write, if one is remembered.
  std::optional<std::string> Find(const std::string& key, std::string_view payload);
  void Remember(std::string key, std::string payload, std::string response);
  // Whether every answer of the last window is here (since the cache began, and none forgotten
  // for capacity within it).
  bool Complete();

 private:
  struct Entry {
    std::string key, payload, response;
    std::chrono::steady_clock::time_point at;
  };
  void Expire(std::chrono::steady_clock::time_point now);

  std::chrono::seconds window_;
  size_t capacity_;
  std::mutex mu_;             // guards entries_, index_ and incomplete_until_
  std::list<Entry> entries_;  // oldest first
  std::chrono::steady_clock::time_point incomplete_until_;  // Complete() is false before it
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace mqttspec::server
