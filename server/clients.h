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
#include <vector>

namespace mqttspec::server {

class Clients {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Clients(Clock::duration idle_ttl = std::chrono::seconds(60)) : idle_ttl_(idle_ttl) {}

  // The client's state for one of its requests (counted), created on first use; a username the
  // front established is kept when the state has none yet.
  std::shared_ptr<ClientInfo> Get(const std::string& id, const std::string& username = "") {
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    SweepLocked(now);
    Entry& e = clients_[id];
    if (!e.info) {
      e.info = std::make_shared<ClientInfo>();
      e.info->id = id;
      e.since_ms = NowMillis();
    }
    if (e.info->username.empty() && !username.empty()) e.info->username = username;
    if (e.username.empty()) e.username = e.info->username;
    e.last_used = now;
    ++e.requests;
    return e.info;
  }
  // A connected client's state (embedded mode): kept until Remove. With `connected` false (a gRPC
  // caller admitted by its connect hooks) it expires when idle, like one never seen connecting.
  void Put(std::shared_ptr<ClientInfo> client, bool connected = true) {
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    SweepLocked(now);
    Entry& e = clients_[client->id];
    e.username = client->username;
    e.info = std::move(client);
    e.connected = connected;
    e.since_ms = NowMillis();  // requests stay counted: one may have raced the connect
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

  // What the admin API shows of a client.
  struct Snapshot {
    std::string id, username;
    int64_t since_ms = 0;  // connected at (or first request, when never seen connecting)
    uint64_t requests = 0;
    bool connected = false;
  };
  std::vector<Snapshot> List() const {
    std::lock_guard lock(mu_);
    std::vector<Snapshot> out;
    out.reserve(clients_.size());
    for (const auto& [id, e] : clients_)
      out.push_back(Snapshot{id, e.username, e.since_ms, e.requests, e.connected});
    return out;
  }
  bool known(const std::string& id) const {
    std::lock_guard lock(mu_);
    return clients_.count(id) != 0;
  }
  bool connected(const std::string& id) const {
    std::lock_guard lock(mu_);
    auto it = clients_.find(id);
    return it != clients_.end() && it->second.connected;
  }
  size_t connected_count() const {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& [id, e] : clients_) n += e.connected ? 1 : 0;
    return n;
  }

 private:
  struct Entry {
    std::shared_ptr<ClientInfo> info;
    Clock::time_point last_used;
    bool connected = false;
    std::string username;  // a copy: `info` belongs to the client's strand
    int64_t since_ms = 0;
    uint64_t requests = 0;
  };
  static int64_t NowMillis() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

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
