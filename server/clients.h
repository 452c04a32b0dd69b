#pragma once
// Clients: the state mqttspec keeps per client — its id, username and the metadata hooks attach
// (claims of a token, a tenant id). A connect (embedded mode) puts a fresh ClientInfo, kept until
// the disconnect; a client never seen connecting (external mode, or a request racing its connect)
// gets one on its first request, which expires once it has been idle for `idle_ttl` — so the table
// is bounded by the clients active within that time, not by every id ever seen.
// Thread-safety: all methods from any thread. A ClientInfo itself is used by one thread at a time:
// the connect hooks before Put, then the client's strand (its requests run one at a time).

#include <mqttspec/plugin.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace mqttspec::server {

class Clients {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Clients(Clock::duration idle_ttl = std::chrono::seconds(60)) : idle_ttl_(idle_ttl) {}

  // The client's state, created on first use.
  std::shared_ptr<ClientInfo> Get(const std::string& id) {
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    SweepLocked(now);
    Entry& e = clients_[id];
    if (!e.info) {
      e.info = std::make_shared<ClientInfo>();
      e.info->id = id;
    }
    e.last_used = now;
    return e.info;
  }
  // A connected client's state (embedded mode): kept until Remove.
  void Put(std::shared_ptr<ClientInfo> client) {
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    SweepLocked(now);
    Entry& e = clients_[client->id];
    e.info = std::move(client);
    e.connected = true;
    e.last_used = now;
  }
  void Remove(const std::string& id) {
    std::lock_guard lock(mu_);
    clients_.erase(id);
  }
  // Removes `client`'s entry only if it is still the one kept for its id: after a takeover (a new
  // connection with the same id) the old connection's disconnect must not drop the new state.
  void Remove(const std::shared_ptr<ClientInfo>& client) {
    std::lock_guard lock(mu_);
    auto it = clients_.find(client->id);
    if (it != clients_.end() && it->second.info == client) clients_.erase(it);
  }
  size_t size() const {
    std::lock_guard lock(mu_);
    return clients_.size();
  }

 private:
  struct Entry {
    std::shared_ptr<ClientInfo> info;
    Clock::time_point last_used;
    bool connected = false;
  };

  // Drops idle entries of clients not connected, at most once per idle_ttl / 4 (amortised).
  void SweepLocked(Clock::time_point now) {
    if (now - last_sweep_ < idle_ttl_ / 4) return;
    last_sweep_ = now;
    for (auto it = clients_.begin(); it != clients_.end();) {
      const Entry& e = it->second;
      // use_count 1: no request of the client is running with it.
      if (!e.connected && now - e.last_used >= idle_ttl_ && e.info.use_count() == 1)
        it = clients_.erase(it);
      else
        ++it;
    }
  }

  const Clock::duration idle_ttl_;
  mutable std::mutex mu_;  // guards everything below
  std::unordered_map<std::string, Entry> clients_;
  Clock::time_point last_sweep_{};
};

}  // namespace mqttspec::server
