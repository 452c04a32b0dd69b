#pragma once
// Clients: the state mqttspec keeps per connected client — its id, username and the metadata hooks
// attach (claims of a token, a tenant id). A connect (embedded mode) puts a fresh ClientInfo; a
// client never seen connecting (external mode) gets one on its first request.
// Thread-safety: all methods from any thread. A ClientInfo itself is used by one thread at a time:
// the connect hooks before Put, then the client's strand (its requests run one at a time).

#include <mqttspec/plugin.h>

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace mqttspec::server {

class Clients {
 public:
  std::shared_ptr<ClientInfo> Get(const std::string& id) {
    std::lock_guard lock(mu_);
    auto& c = clients_[id];
    if (!c) {
      c = std::make_shared<ClientInfo>();
      c->id = id;
    }
    return c;
  }
  void Put(std::shared_ptr<ClientInfo> client) {
    std::lock_guard lock(mu_);
    clients_[client->id] = std::move(client);
  }
  void Remove(const std::string& id) {
    std::lock_guard lock(mu_);
    clients_.erase(id);
  }
  size_t size() const {
    std::lock_guard lock(mu_);
    return clients_.size();
  }

 private:
  mutable std::mutex mu_;  // guards clients_
  std::unordered_map<std::string, std::shared_ptr<ClientInfo>> clients_;
};

}  // namespace mqttspec::server
