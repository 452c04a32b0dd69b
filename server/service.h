#pragma once
// Service: the core every front drives, and its one entry for a request — whatever carries it
// (the two MQTT transports through MqttFront, gRPC next). Submit puts the request on its client's
// strand of the worker pool (ClientExecutor: a client's requests in order, clients in parallel),
// applies the rate limit (RateLimiter), runs it through the Router (dedup, client_access, hooks,
// handlers) and gives the answer to the caller's completion. Committed changes are fanned out to
// subscriptions (ChangeFeed) through the Transport given for notifications.
// Thread-safety: every public method may be called from any thread.

#include <mqttspec/plugin.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "server/change_feed.h"
#include "server/client_executor.h"
#include "server/cluster.h"
#include "server/config.h"
#include "server/core.h"
#include "server/events.h"
#include "server/log_follower.h"
#include "server/metrics.h"
#include "server/partitions.h"
#include "server/rate_limiter.h"
#include "server/router.h"
#include "server/transport.h"
#include "server/twin_outbox.h"

namespace mqttspec::server {

// Who sends a request, as the front established it.
struct Caller {
  std::string client_id;  // a valid client id (topics.h IsValidClientId)
  std::string username;   // "" when the front has none
  // The front's thread may run the request itself when the client has nothing else queued or
  // running (ClientExecutor::TryRunHere): a thread that may block (gRPC's synchronous server),
  // never the broker's.
  bool run_here = false;
};

// Receives the answer (the response JSON), on a worker thread.
using Completion = std::function<void(std::string response)>;

class Service {
 public:
  // Serves `core`; committed changes of core's database are fanned out to its subscriptions
  // through `notifications` from now on.
  Service(const Config& config, Core& core, Transport& notifications);
  ~Service();

  // Takes one request. Returns at once; `done` gets the answer later, from a worker thread, in
  // the order of the caller's requests (with caller.run_here, possibly before Submit returns,
  // on the calling thread).
  void Submit(Caller caller, std::string payload, Completion done);
  // Takes a device's twin message (Router::HandleTwin), in order with the device's requests.
  // `done` gets "" when all went well (a twin message has no answer), else the error response.
  void SubmitTwin(Caller caller, Router::TwinMessage message, std::string payload, Completion done);

  // Client lifecycle, for fronts that see connections (embedded mode):
  //  - Authenticate: a CONNECT arrives (`client` holds id, username, password). Runs the
  //    BeforeConnect hooks right here, on the caller's thread (the broker's, so they must be
  //    quick); an error means: refuse the CONNECT.
  //  - OnClientConnected: the connection is established. Its state becomes the client's (the
  //    password is dropped), and, ordered with its requests: a clean session's earlier
  //    subscriptions end, then the AfterConnect hooks run.
  //  - OnClientDisconnected: ordered after its requests: BeforeDisconnect hooks, the end of a
  //    clean session's subscriptions, AfterDisconnect hooks, and its state is forgotten.
  Status Authenticate(ClientInfo& client);
  // A caller of a front without connections (gRPC) on its first call, or its first after its
  // state expired (idle): BeforeConnect here (an error refuses the call), then the client's state
  // is kept like a connected client's (but expires when idle) and AfterConnect runs on its
  // strand. So its connect hooks run once per identity and activity, not once per call.
  Status AdmitCaller(std::shared_ptr<ClientInfo> client);
  void OnClientConnected(std::shared_ptr<ClientInfo> client, bool clean);
  // `client`: the state that connection was given (OnClientConnected), so a takeover's new
  // connection keeps its own.
  void OnClientDisconnected(std::shared_ptr<ClientInfo> client, bool clean);

  // Blocks until every request taken so far has been answered and its notifications published.
  void Drain();

  struct Stats {
    uint64_t taken = 0, answered = 0, rate_limited = 0;
    size_t rate_buckets = 0;  // clients the rate limiter tracks (those of about the last second)
  };
  Stats stats() const;

  // For the admin API: the core served, the figures (Metrics: every answered request is
  // counted) and the event stream (requests, changes, connects, disconnects).
  Core& core() { return core_; }
  Events& events() { return events_; }
  // Whose requests this instance answers (broker.partition).
  Partitions& partitions() { return partitions_; }
  std::vector<Metrics::Sample> CollectMetrics() const;

 private:
  static constexpr size_t kChangeQueueCapacity = 10000;  // changes awaiting fan-out

  // Submit and SubmitTwin (`twin`: null for a request).
  void Enqueue(Caller caller, std::string payload, Completion done,
               std::shared_ptr<const Router::TwinMessage> twin);
  Status RunClientHooks(HookType type, ClientInfo& client);
  void PublishClientEvent(const char* kind, const std::string& client_id);
  // Counts an answered request (Metrics) and, when watched, publishes its event.
  void Record(const std::string& client_id, const Router::Outcome& outcome,
              std::chrono::steady_clock::duration took);

  std::unique_ptr<TwinOutbox> twin_outbox_;  // device twin requests (twin_outbox.h)
  Core& core_;
  Router& router_;
  Metrics metrics_;
  Events events_;
  RateLimiter limiter_;
  Partitions partitions_;
  std::unique_ptr<ChangeFeed> feed_;
  // With a shared log (Database::shares_log): the feed hears of changes from the log, not from
  // this instance's commits.
  std::unique_ptr<LogFollower> follower_;
  std::unique_ptr<Cluster> cluster_;  // cluster.enabled
  std::atomic<uint64_t> taken_{0}, answered_{0}, rate_limited_{0};
  std::unique_ptr<ClientExecutor> executor_;  // last: its threads stop first
};

}  // namespace mqttspec::server
