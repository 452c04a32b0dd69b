#pragma once
// Service: the core that every transport drives. It owns nothing broker-specific: given a request
// PUBLISH it checks the topic and the client's rate, queues the request on the client's strand of
// the worker pool, runs it through the Router and publishes the response.
// Thread-safety: OnMessage may be called from any thread (typically the transport's).

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "server/change_feed.h"
#include "server/client_executor.h"
#include "server/config.h"
#include "server/core.h"
#include "server/router.h"
#include "server/transport.h"

namespace mqttspec::server {

class Service {
 public:
  // Serves `core` through `publisher`; committed changes of core's database are fanned out to
  // its subscriptions from now on.
  Service(const Config& config, Core& core, Publisher& publisher);
  ~Service();

  // Takes one PUBLISH from a request topic. Returns quickly; the answer is published later from
  // a worker thread. Messages on malformed topics are dropped and counted.
  void OnMessage(InboundMessage message);

  // Client lifecycle, for transports that see connections (embedded mode):
  //  - Authenticate: a CONNECT arrives (`client` holds id, username, password). Runs the
  //    BeforeConnect hooks right here, on the caller's thread (the broker's, so they must be
  //    quick); an error means: refuse the CONNECT.
  //  - OnClientConnected: the connection is established. Its state becomes the client's (the
  //    password is dropped), and, ordered with its requests: a clean session's earlier
  //    subscriptions end, then the AfterConnect hooks run.
  //  - OnClientDisconnected: ordered after its requests: BeforeDisconnect hooks, the end of a
  //    clean session's subscriptions, AfterDisconnect hooks, and its state is forgotten.
  Status Authenticate(ClientInfo& client);
  void OnClientConnected(std::shared_ptr<ClientInfo> client, bool clean);
  void OnClientDisconnected(const std::string& client_id, bool clean);

  // Blocks until every request taken so far has been answered and its notifications published.
  void Drain();

  ChangeFeed& change_feed() { return *feed_; }

  // The topic filter a transport subscribes to: "<prefix>/+/request".
  std::string RequestFilter() const { return prefix_ + "/+/request"; }

  // The client id of a request topic "<prefix>/<client>/request", or nullopt when the topic has
  // another shape or the id is not 1–128 characters free of '/', '+', '#' and NUL.
  std::optional<std::string_view> ClientOfTopic(std::string_view topic) const;

  struct Stats {
    uint64_t taken = 0, answered = 0, dropped_topics = 0, rate_limited = 0;
    size_t rate_buckets = 0;  // clients the rate limiter tracks (those of about the last second)
  };
  Stats stats() const;

 private:
  static constexpr size_t kChangeQueueCapacity = 10000;  // changes awaiting fan-out

  bool Admit(const std::string& client);  // token bucket per client
  Status RunClientHooks(HookType type, ClientInfo& client);

  std::string prefix_;
  int response_qos_;
  double rate_per_s_;
  Core& core_;
  Router& router_;
  Publisher& publisher_;
  std::unique_ptr<ChangeFeed> feed_;

  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point last;
  };
  mutable std::mutex buckets_mu_;  // guards buckets_ and last_prune_
  std::unordered_map<std::string, Bucket> buckets_;  // clients seen within about a second
  std::chrono::steady_clock::time_point last_prune_{};

  std::atomic<uint64_t> taken_{0}, answered_{0}, dropped_topics_{0}, rate_limited_{0};
  std::unique_ptr<ClientExecutor> executor_;  // last: its threads stop first
};

}  // namespace mqttspec::server
