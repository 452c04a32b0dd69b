#pragma once
// Handlers: one per operation (read, create, update, delete, meta, subscribe, unsubscribe), each
// the same short story — bind what hooks may see, Before hooks, the database step, After hooks,
// the Reply — with the chain's rules in hooks/pipeline.h and the JSON in protocol/render.h.
// The Router (server/router.h) parses, checks client_access, runs BeforeHandle and dispatches.
// Thread-safety: a handler runs on the thread of its request; what it shares (the database, the
// subscriptions) is thread-safe.

#include <mqttspec/plugin.h>

#include <array>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "adapters/database.h"
#include "common/error.h"
#include "hooks/pipeline.h"
#include "protocol/render.h"
#include "protocol/request.h"
#include "server/subscriptions.h"
#include "server/twin_outbox.h"

namespace mqttspec::server {

// What a handler gives back: a Reply, or an error (`committed`: the write happened anyway).
struct Answer {
  std::optional<protocol::Reply> reply;
  Error error{ErrorCode::kInternal, ""};
  bool committed = false;
  // A resumed subscription, replayed after `resume_after` once the answer has left.
  SubscriptionPtr resume;
  int64_t resume_after = 0;
  // Device twin requests to publish, just before the answer (twin.cc, server/twin_outbox.h).
  std::vector<TwinDelivery> deliveries{};

  static Answer Of(protocol::Reply r) { return Answer{std::move(r), {}, false, nullptr, 0}; }
  static Answer Fail(Error e) { return Answer{std::nullopt, std::move(e), false, nullptr, 0}; }
  static Answer Committed(Error e) { return Answer{std::nullopt, std::move(e), true, nullptr, 0}; }
};

// Twin writes of one key take turns on one instance (server/handlers/twin.cc): locks striped by
// the key's hash, one set per Router. Thread-safety: any thread; a thread holds at most one of
// them, never while it takes another.
class TwinKeyLocks {
 public:
  std::mutex& For(const std::string& id);

 private:
  std::array<std::mutex, 256> locks_;
};

// One request's call: the parsed request, its client, its hooks, and what handlers work on.
struct Call {
  ClientInfo& client;
  protocol::Request& req;
  hooks::Pipeline& pipe;
  adapters::Database& db;
  Subscriptions* subscriptions;  // null: subscriptions are not served
  const adapters::WriteTag* tag = nullptr;  // a write: recorded with it (Router's dedup)
  TwinKeyLocks* twin_locks = nullptr;       // the Router's
  // A write may suspend the calling task while it waits for its group commit (the write
  // handlers then answer as its continuation; adapters/database.h).
  bool suspend = false;
  adapters::FilterList scope{};  // what hooks' filters allow a write to touch (update, delete)

  hooks::RequestHookContext& hooks() { return pipe.context(); }
  const registry::Model& model() const { return *req.model; }
};

// The write handlers answer through `done`: before they return, or — with call.suspend — as the
// continuation of the calling task once the write committed, on another thread (the call and all
// it refers to must live until then). The others return their answer.
using AnswerDone = std::function<void(Answer)>;
Answer HandleRead(Call& call);
void HandleCreate(Call& call, AnswerDone done);
void HandleUpdate(Call& call, AnswerDone done);
void HandleDelete(Call& call, AnswerDone done);
Answer HandleMeta(Call& call);
Answer HandleSubscribe(Call& call);
Answer HandleUnsubscribe(Call& call);
// mqttspec.twin (twin.cc): an app's update of a request or a device's report (HandleUpdate
// hands it over); a create, refused.
Answer HandleTwinUpdate(Call& call);
Answer RefuseTwinCreate();
// A write applied before (recorded with `keys`), answered again without writing (replay.cc).
Answer HandleReplay(Call& call, const std::vector<Value>& keys);

// not_found for the request's target key.
Error NotFound(const registry::Model& model, const Value& key);
// Every field of the model, in order: what writes return.
std::vector<int> AllColumns(const registry::Model& model);

}  // namespace mqttspec::server
