#pragma once
// Router: one request payload in, one response payload out. Parses and validates the request
// (server/request.h), runs it against the Database, and renders the response exactly as
// PROTOCOL.md says. Repeated writes (same client, same id, same payload within the dedup window)
// are answered from the first result instead of being applied twice.
// Thread-safety: Handle may be called concurrently for different clients; the caller runs the
// requests of one client in order (server/client_executor.h).

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <atomic>
#include <chrono>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "adapters/database.h"
#include "hooks/hook_registry.h"
#include "registry/model_registry.h"
#include "server/request.h"
#include "server/subscriptions.h"

namespace mqttspec::server {

struct RouterOptions {
  ParseLimits parse;
  int64_t max_payload_bytes = 262144;
  int dedup_window_s = 60;
  size_t dedup_capacity = 100000;  // remembered writes, oldest forgotten first
};

class Router {
 public:
  // `subscriptions` may be null: subscribe/unsubscribe are then answered invalid_operation.
  // `hooks` may be null: no hooks run.
  Router(registry::ModelRegistry& models, adapters::Database& db, RouterOptions options,
         Subscriptions* subscriptions = nullptr, const hooks::HookRegistry* hooks = nullptr);

  // Handles one request of `client` and returns the response payload (JSON). Hooks may read and
  // change the client's metadata.
  std::string Handle(ClientInfo& client, std::string_view payload);

  // Counts for the admin API and tests.
  struct Stats {
    uint64_t requests = 0, errors = 0, dedup_hits = 0;
  };
  Stats stats() const;

 private:
  std::string Execute(ClientInfo& client, Request& req);
  void WriteMeta(const registry::Model& model, rapidjson::Writer<rapidjson::StringBuffer>& w) const;

  // Remembers the response to recent writes, keyed by client and request id.
  class DedupCache {
   public:
    DedupCache(int window_s, size_t capacity) : window_(window_s), capacity_(capacity) {}
    // The earlier response to an identical write, if one is remembered.
    std::optional<std::string> Find(const std::string& key, std::string_view payload);
    void Remember(std::string key, std::string payload, std::string response);

   private:
    struct Entry {
      std::string key, payload, response;
      std::chrono::steady_clock::time_point at;
    };
    void Expire(std::chrono::steady_clock::time_point now);
    std::chrono::seconds window_;
    size_t capacity_;
    std::mutex mu_;             // guards entries_ and index_
    std::list<Entry> entries_;  // oldest first
    std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  };

  registry::ModelRegistry& models_;
  adapters::Database& db_;
  RouterOptions options_;
  Subscriptions* subscriptions_;
  const hooks::HookRegistry* hooks_;
  DedupCache dedup_;
  std::atomic<uint64_t> requests_{0}, errors_{0}, dedup_hits_{0};
};

}  // namespace mqttspec::server
