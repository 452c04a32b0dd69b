#pragma once
// Router: one request payload in, one response payload out — the same for every front. It
// enforces the payload limit, parses and validates the request (protocol/request.h), answers a
// repeated write from the DedupCache (or, while that may lack answers of an earlier run, from the
// database's record of the write: a replay), records each write with its request id, checks the model's client_access, runs the BeforeHandle
// hooks and hands the request to its operation's handler (server/handlers/), then renders the
// Answer (protocol/render.h).
// Thread-safety: Handle may be called concurrently for different clients; the caller runs the
// requests of one client in order (server/client_executor.h) — a client's next request may start
// while its write waits for a group commit, so a read awaits its turn first (common/blocking.h).

#include <mqttspec/plugin.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>

#include "adapters/database.h"
#include "hooks/hook_registry.h"
#include "protocol/limits.h"
#include "protocol/request.h"
#include "registry/model_registry.h"
#include "server/dedup_cache.h"
#include "server/recorded_keys.h"
#include "server/subscriptions.h"
#include "server/twin_outbox.h"

namespace mqttspec::server {

struct Answer;       // server/handlers/handler.h
class TwinKeyLocks;  // server/handlers/handler.h

struct RouterOptions {
  protocol::ParseLimits parse;
  int64_t max_payload_bytes = 262144;
  int dedup_window_s = 60;
  size_t dedup_capacity = 100000;  // remembered writes, oldest forgotten first
  // Other processes write records to the same database (cluster.enabled): a write the
  // DedupCache does not know is always looked up in the database, since a client's retry may
  // follow a write another instance applied. Otherwise this process knows every record
  // (RecordedKeys, after LoadRecordedWrites) and looks up only the writes that may be repeats.
  bool records_shared = false;
};

class Router {
 public:
  // `subscriptions` may be null: subscribe/unsubscribe are then answered invalid_operation.
  // `hooks` may be null: no hooks run.
  Router(registry::ModelRegistry& models, adapters::Database& db, RouterOptions options,
         Subscriptions* subscriptions = nullptr, const hooks::HookRegistry* hooks = nullptr);
  ~Router();

  // What became of one request, for metrics and the admin API's event stream.
  struct Outcome {
    std::string_view operation = "unknown";  // read, create, …; "unknown" when unreadable
    const registry::Model* model = nullptr;  // null when the request names none
    std::string_view code = "ok";            // "ok" or the protocol's error code
    // A subscribe with since_change_seq: the subscription to replay the change log to after
    // `resume_after`, once the answer has left (ChangeFeed::Resume; Service does it).
    SubscriptionPtr resume;
    int64_t resume_after = 0;
    // Device twin requests to publish (TwinOutbox), just before the answer.
    std::vector<TwinDelivery> deliveries;
  };

  // Handles one request of `client` and hands the response payload (JSON) and its Outcome to
  // `reply`: before it returns — or, with `suspend`, for a write that waits for its group commit,
  // as the continuation of the calling task (common/blocking.h Suspend), on another thread once
  // the write committed; `client` must then stay alive until `reply` has run. Hooks may read and
  // change the client's metadata.
  using Reply = std::function<void(std::string response, Outcome& outcome)>;
  void Handle(ClientInfo& client, std::string payload, Reply reply, bool suspend);
  // The same, blocking: returns the response; `outcome`, if given, says what happened.
  std::string Handle(ClientInfo& client, std::string_view payload, Outcome* outcome = nullptr);

  // A device's twin message (docs/protocol.md §13), run as a request of the device `client`:
  // a report (`payload`: the value, stored as an update of mqttspec.twin) or a get (`payload`: a
  // JSON list of keys, read; each key's request becomes a delivery in `outcome`). Returns "" when
  // all went well, else the error response, its message naming `topic`.
  struct TwinMessage {
    protocol::Request::Origin origin = protocol::Request::Origin::kTwinReport;
    std::string key;    // a report's key (topics.h IsValidTwinKey)
    std::string topic;  // where it was published
  };
  std::string HandleTwin(ClientInfo& client, const TwinMessage& message, std::string_view payload,
                         Outcome* outcome = nullptr);

  // Reads which writes the database holds unexpired records of (an earlier run's), so that only
  // possible repeats are looked up there (RecordedKeys). Call once at start, before requests;
  // without it (or if it fails) every write of the first window is looked up. Not with
  // records_shared.
  Status LoadRecordedWrites();

  // Counts for the admin API and tests.
  struct Stats {
    uint64_t requests = 0, errors = 0, dedup_hits = 0;
    uint64_t record_lookups = 0;  // writes looked up in the database (FindWrite)
  };
  Stats stats() const;

 private:
  // Whether a write the DedupCache does not know may have a record in the database (applied by
  // an earlier run, or by another instance with records_shared): then it is looked up there.
  bool MayBeRecorded(const std::string& client_id, const std::string& request_id);
  struct Pending;  // one request's state, kept until it is answered
  // What Handle does before the request runs: checks the payload, parses it, awaits the turn of
  // a read, answers a repeated write. True: `response` is the answer (the request is done).
  bool Admit(Pending& p, std::string& response);
  // Runs the admitted request through its handler, then replies (Conclude).
  void Execute(std::shared_ptr<Pending> p, bool suspend);
  // A dedup'd write's answer is remembered; the reply leaves.
  void Conclude(Pending& p, std::string response);
  // The answer to a write an earlier run applied (recorded with `keys`), without writing.
  std::string Replay(ClientInfo& client, protocol::Request& req, const std::vector<Value>& keys,
                     Outcome& outcome);
  std::string Render(const protocol::Request& req, Answer answer, Outcome& outcome);
  // Runs a parsed request through its handler (client_access, hooks, the operation).
  Answer Run(ClientInfo& client, protocol::Request& req, const adapters::WriteTag* tag);
  // The request of a twin message (HandleTwin), parsed like any payload (nullopt: an empty
  // twin/get, nothing to do), or the error.
  Result<std::optional<protocol::Request>> TwinRequest(const ClientInfo& client,
                                                       const TwinMessage& message,
                                                       std::string_view payload);

  registry::ModelRegistry& models_;
  adapters::Database& db_;
  RouterOptions options_;
  Subscriptions* subscriptions_;
  const hooks::HookRegistry* hooks_;
  DedupCache dedup_;
  RecordedKeys recorded_;
  std::atomic<bool> records_known_{false};  // LoadRecordedWrites went through
  std::unique_ptr<TwinKeyLocks> twin_locks_;
  // Dedup keys of writes being executed: a repeat of one waits for its answer (AwaitTurn) —
  // a client's next request may start while its write waits for a group commit.
  std::mutex inflight_mu_;
  std::unordered_multiset<std::string> inflight_;
  std::atomic<uint64_t> requests_{0}, errors_{0}, dedup_hits_{0}, record_lookups_{0};
};

}  // namespace mqttspec::server
