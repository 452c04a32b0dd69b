// mqttspec::Client: the connection manager, the request table with back-pressure, the
// subscription state machine and the callback dispatcher (see mqttspec/client.h).
//
// Threads and locks
// - The manager thread connects, reconnects (Backoff), expires timed-out requests, repairs
//   subscriptions and pings the service; it is the only thread that waits on Paho tokens.
// - Paho's callback thread hands in answers and notifications (OnMessage) and connection loss.
//   It never waits and never calls Paho; callers' threads publish directly when nothing waits.
// - The dispatcher thread runs every user callback, one at a time, in order.
// - mu_ guards the request table, the subscriptions and the connection state. send_mu_ is
//   taken before mu_ by whoever publishes, so requests leave in the order they were queued.
//   dq_mu_ guards the dispatcher's queue and is taken after mu_ (never the other way round).
#include "mqttspec/client.h"

#include <mqtt/async_client.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "client/nodelay.h"
#include "client/wire.h"

namespace mqttspec::client {

using Clock = std::chrono::steady_clock;

namespace {

Reply ErrorReply(std::string_view code, std::string message) {
  Reply r;
  r.ok = false;
  r.error.code = std::string(code);
  r.error.message = std::move(message);
  return r;
}

wire::RequestParts PingParts() {
  wire::RequestParts p;
  p.type = "ping";
  return p;
}

wire::RequestParts UnsubscribeParts(const std::string& subscription_id) {
  wire::RequestParts p;
  p.type = "subscription";
  p.operation = "unsubscribe";
  p.subscription_id = subscription_id;
  return p;
}

std::string RandomNonce() {
  std::mt19937_64 rng(std::random_device{}() ^
                      static_cast<uint64_t>(Clock::now().time_since_epoch().count()));
  static const char* kHex = "0123456789abcdef";
  std::string s(10, '0');
  uint64_t v = rng();
  for (char& c : s) {
    c = kHex[v & 15];
    v >>= 4;
  }
  return s;
}

}  // namespace

// One request from the moment it is made until it is answered, times out, or is dropped.
struct Pending {
  std::string id;
  std::string payload;
  Clock::time_point deadline;
  std::chrono::milliseconds timeout{0};
  bool internal = false;  // the client's own (subscriptions, pings): never blocks, never dropped
  bool sent = false;      // published on the current connection and not answered
  bool done = false;
  uint64_t order = 0;
  std::optional<std::promise<Reply>> promise;
  ReplyCallback callback;               // on the dispatcher thread
  std::function<void(Reply)> on_reply;  // the client's own, on whatever thread answers
};

// A subscription handle's shared state. Fields below `mu`-free comment are guarded by the
// owning ClientImpl's mu_; the snapshot fields read by handles are atomics or under snap_mu.
struct SubscriptionState {
  enum class Phase { kStarting, kSubscribing, kActive, kRepair, kRestart, kEnded };

  Entity entity{"", ""};
  std::vector<Filter> filters;
  NotificationCallback on_note;
  SubscriptionEventCallback on_event;
  bool mirror = false;
  std::function<void(const std::vector<Json>&)> on_snapshot;

  std::promise<Reply> ready_promise;
  std::shared_future<Reply> ready = ready_promise.get_future().share();
  std::atomic<bool> cancelled{false};
  std::atomic<int64_t> position_seen{0};
  std::atomic<bool> is_active{false};
  mutable std::mutex snap_mu;
  std::string server_id_seen;  // guarded by snap_mu

  // Guarded by ClientImpl::mu_.
  Phase phase = Phase::kStarting;
  std::string server_id;
  uint64_t server_seq = 0;
  bool position_known = false;
  int64_t position = 0;
  bool log_off = false;
  uint64_t handle_seq = 0;
  bool ready_set = false;
  bool resuming = false;
  bool overflowing = false;
  uint64_t dropped = 0;
  std::string primary_key;     // mirror
  std::vector<Json> snapshot;  // mirror, while reading
  int64_t snapshot_cs = 0;
  bool snapshot_cs_known = false;
};

class ClientImpl : public std::enable_shared_from_this<ClientImpl> {
 public:
  explicit ClientImpl(ClientOptions o) : o_(std::move(o)), nonce_(RandomNonce()) {
    const std::string base = o_.topic_prefix + "/" + o_.client_id + "/";
    request_topic_ = base + "request";
    response_topic_ = base + "response";
    notify_filter_ = base + "notify/+";
    notify_prefix_ = base + "notify/";
    if (o_.max_in_flight == 0) o_.max_in_flight = 1;
    if (o_.notification_queue == 0) o_.notification_queue = 1;
    version_ = o_.mqtt_version == 4 ? 4 : 5;
  }

  ~ClientImpl() {
    Stop();
    if (dispatcher_.joinable()) {
      if (dispatcher_.get_id() == std::this_thread::get_id())
        dispatcher_.detach();  // the last handle went away inside a callback
      else
        dispatcher_.join();
    }
  }

  void Start() {
    std::lock_guard lock(mu_);
    if (started_ || stopping_) return;
    started_ = true;
    dispatcher_ = std::thread([this] { DispatchLoop(); });
    manager_ = std::thread([this] { ManagerLoop(); });
  }

  void Stop() {
    {
      std::unique_lock lock(mu_);
      if (stopped_) return;
      if (stopping_) {  // another thread is stopping: wait for it
        stopped_cv_.wait(lock, [&] { return stopped_; });
        return;
      }
      stopping_ = true;
    }
    cv_.notify_all();
    room_cv_.notify_all();
    if (manager_.joinable()) manager_.join();
    // Everything still waiting is answered kStopped; subscriptions end.
    std::vector<std::shared_ptr<Pending>> left;
    {
      std::lock_guard lock(mu_);
      for (auto& [id, p] : by_id_) {
        p->done = true;
        left.push_back(p);
      }
      by_id_.clear();
      waiting_.clear();
      queued_ = in_flight_ = 0;
      for (auto& s : subs_) {
        s->phase = SubscriptionState::Phase::kEnded;
        s->is_active = false;
        if (!s->ready_set) {
          s->ready_set = true;
          s->ready_promise.set_value(ErrorReply(kStopped, "the client stopped"));
        }
      }
      subs_.clear();
      by_server_id_.clear();
    }
    for (auto& p : left) Deliver(*p, ErrorReply(kStopped, "the client stopped"));
    if (cli_) {
      try {
        cli_->disable_callbacks();
      } catch (const mqtt::exception&) {
      }
    }
    {
      std::lock_guard lock(dq_mu_);
      dq_quit_ = true;
    }
    dq_cv_.notify_all();
    if (dispatcher_.joinable() && dispatcher_.get_id() != std::this_thread::get_id())
      dispatcher_.join();
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
    }
    stopped_cv_.notify_all();
  }

  bool WaitConnected(std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mu_);
    return connected_cv_.wait_for(lock, timeout,
                                  [&] { return (connected_ && ready_) || stopping_; }) &&
           connected_ && ready_ && !stopping_;
  }

  bool connected() const {
    std::lock_guard lock(mu_);
    return connected_;
  }

  ClientStats stats() const {
    std::lock_guard lock(mu_);
    ClientStats s = stats_;
    s.queued = queued_;
    s.in_flight = in_flight_;
    s.notifications_delivered = delivered_.load();
    return s;
  }

  // ---- requests ----

  std::future<Reply> Call(wire::RequestParts parts, std::chrono::milliseconds timeout) {
    auto p = MakePending(parts, timeout);
    p->promise.emplace();
    auto f = p->promise->get_future();
    Submit(std::move(p));
    return f;
  }

  void Call(wire::RequestParts parts, ReplyCallback cb, std::chrono::milliseconds timeout) {
    auto p = MakePending(parts, timeout);
    p->callback = std::move(cb);
    Submit(std::move(p));
  }

  // A request refused before it is sent: answered through the same path as any other.
  std::future<Reply> Refuse(std::string why) {
    std::promise<Reply> pr;
    pr.set_value(ErrorReply(kInvalidRequest, std::move(why)));
    return pr.get_future();
  }
  void Refuse(std::string why, ReplyCallback cb) {
    Post([cb = std::move(cb), why = std::move(why)] { cb(ErrorReply(kInvalidRequest, why)); });
  }

  // ---- subscriptions ----

  Subscription Subscribe(const Entity& e, std::vector<Filter> filters, NotificationCallback cb,
                         SubscribeOptions so, bool mirror,
                         std::function<void(const std::vector<Json>&)> on_snapshot) {
    auto s = std::make_shared<SubscriptionState>();
    s->entity = e;
    s->filters = std::move(filters);
    s->on_note = std::move(cb);
    s->on_event = std::move(so.on_event);
    s->mirror = mirror;
    s->on_snapshot = std::move(on_snapshot);
    if (so.since_change_seq) {
      s->position_known = true;
      s->position = *so.since_change_seq;
      s->position_seen = s->position;
    }
    const std::string bad = wire::CheckEntity(e);
    std::lock_guard lock(mu_);
    if (!bad.empty() || stopping_) {
      s->phase = SubscriptionState::Phase::kEnded;
      s->ready_set = true;
      s->ready_promise.set_value(stopping_ ? ErrorReply(kStopped, "the client stopped")
                                           : ErrorReply(kInvalidRequest, bad));
      return Subscription(s);
    }
    subs_.push_back(s);
    StartLocked(s);
    return Subscription(s);
  }

  std::future<Reply> Unsubscribe(const std::shared_ptr<SubscriptionState>& s) {
    std::string server_id;
    {
      std::lock_guard lock(mu_);
      s->cancelled = true;
      s->is_active = false;
      if (s->phase != SubscriptionState::Phase::kEnded) {
        s->phase = SubscriptionState::Phase::kEnded;
        if (!s->server_id.empty()) {
          by_server_id_.erase(s->server_id);
          server_id = s->server_id;
        }
        RemoveSubLocked(s);
      }
      if (!s->ready_set) {
        s->ready_set = true;
        s->ready_promise.set_value(ErrorReply("not_found", "unsubscribed before it was active"));
      }
    }
    if (server_id.empty()) {
      std::promise<Reply> pr;
      Reply r;
      r.ok = true;
      r.data = Json::Object({{"unsubscribed", true}});
      pr.set_value(r);
      return pr.get_future();
    }
    auto promise = std::make_shared<std::promise<Reply>>();
    auto f = promise->get_future();
    auto p = MakePending(UnsubscribeParts(server_id), std::chrono::milliseconds(0));
    p->on_reply = [promise](Reply r) {
      // Already ended by the service (a clean session, a restart): what was asked is done.
      if (!r.ok && r.error.code == "not_found") {
        r = Reply();
        r.ok = true;
        r.data = Json::Object({{"unsubscribed", true}});
      }
      promise->set_value(std::move(r));
    };
    Submit(std::move(p));
    return f;
  }

 private:
  using Phase = SubscriptionState::Phase;

  std::shared_ptr<Pending> MakePending(const wire::RequestParts& parts,
                                       std::chrono::milliseconds timeout) {
    auto p = std::make_shared<Pending>();
    p->id = nonce_ + "-" + std::to_string(next_id_.fetch_add(1) + 1);
    p->payload = wire::RenderRequest(p->id, parts);
    p->timeout = timeout.count() > 0 ? timeout : o_.request_timeout;
    p->deadline = Clock::now() + p->timeout;
    return p;
  }

  // A user request: queued (with the overflow policy) and sent as soon as there is room.
  void Submit(std::shared_ptr<Pending> p) {
    std::vector<std::shared_ptr<Pending>> dropped;
    {
      std::unique_lock lock(mu_);
      if (stopping_) {
        lock.unlock();
        Deliver(*p, ErrorReply(kStopped, "the client stopped"));
        return;
      }
      if (!p->internal && queued_ >= o_.max_queued) {
        if (o_.overflow == Overflow::kFailFast) {
          lock.unlock();
          Deliver(*p, ErrorReply(kQueueFull, "the request queue is full (" +
                                                 std::to_string(o_.max_queued) + " waiting)"));
          return;
        }
        if (o_.overflow == Overflow::kDropOldest) {
          for (auto it = waiting_.begin(); it != waiting_.end() && queued_ >= o_.max_queued;) {
            if ((*it)->done || (*it)->internal) {
              ++it;
              continue;
            }
            auto old = *it;
            it = waiting_.erase(it);
            dropped.push_back(TakeLocked(old->id));
          }
        } else {
          const bool room = room_cv_.wait_until(
              lock, p->deadline, [&] { return stopping_ || queued_ < o_.max_queued; });
          if (stopping_ || !room) {
            lock.unlock();
            Deliver(*p, stopping_ ? ErrorReply(kStopped, "the client stopped")
                                  : TimeoutReply(*p, "waiting for room in the request queue"));
            return;
          }
        }
      }
      EnqueueLocked(p);
    }
    for (auto& d : dropped)
      Deliver(*d, ErrorReply(kDropped, "pushed out of the full request queue by a newer one"));
    Drain();
  }

  void EnqueueLocked(const std::shared_ptr<Pending>& p) {
    p->order = ++order_;
    by_id_[p->id] = p;
    waiting_.push_back(p);
    ++queued_;
    deadlines_.emplace(p->deadline, p->id);
    if (p->internal) cv_.notify_all();  // the manager sends it (we may be on Paho's thread)
  }

  // The client's own request, made while holding mu_ (from any thread): never blocks.
  void SubmitInternalLocked(const wire::RequestParts& parts, std::function<void(Reply)> on_reply) {
    auto p = MakePending(parts, std::chrono::milliseconds(0));
    p->internal = true;
    p->on_reply = std::move(on_reply);
    EnqueueLocked(p);
  }

  // Publishes waiting requests while connected and under max_in_flight, in queue order.
  void Drain() {
    std::lock_guard send_lock(send_mu_);
    for (;;) {
      std::vector<std::shared_ptr<Pending>> batch;
      mqtt::async_client* cli = nullptr;
      uint64_t gen = 0;
      {
        std::lock_guard lock(mu_);
        if (!connected_ || !ready_ || stopping_) return;
        while (!waiting_.empty() && in_flight_ < o_.max_in_flight + internal_room_) {
          auto p = waiting_.front();
          waiting_.pop_front();
          if (p->done) continue;
          p->sent = true;
          --queued_;
          ++in_flight_;
          ++stats_.requests_sent;
          batch.push_back(std::move(p));
          if (batch.size() >= 64) break;
        }
        cli = cli_.get();
        gen = generation_;
        if (!batch.empty()) room_cv_.notify_all();
      }
      if (batch.empty()) return;
      for (size_t i = 0; i < batch.size(); ++i) {
        if (!Publish(cli, *batch[i])) {
          if (!cli->is_connected()) OnLost("publish refused: not connected");
          // Not taken (the link is going down, or Paho is full): back to the front, in order,
          // unless the connection loss already put them back.
          std::lock_guard lock(mu_);
          if (generation_ == gen) {
            for (size_t j = batch.size(); j-- > i;) {
              auto& q = batch[j];
              if (q->done || !q->sent) continue;
              q->sent = false;
              --in_flight_;
              ++queued_;
              --stats_.requests_sent;
              waiting_.push_front(q);
            }
            retry_send_at_ = Clock::now() + std::chrono::milliseconds(20);
          }
          return;
        }
      }
    }
  }

  bool Publish(mqtt::async_client* cli, const Pending& p) {
    try {
      auto b = mqtt::message_ptr_builder().topic(request_topic_).payload(p.payload).qos(1);
      if (version_ == 5) {
        mqtt::properties props;
        props.add(mqtt::property(mqtt::property::CORRELATION_DATA, mqtt::binary(p.id)));
        b.properties(std::move(props));
      }
      cli->publish(b.finalize());
      return true;
    } catch (const mqtt::exception&) {
      return false;
    }
  }

  Reply TimeoutReply(const Pending& p, std::string_view where) {
    return ErrorReply(kRequestTimeout, "no answer within " + std::to_string(p.timeout.count()) +
                                           " ms (" + std::string(where) + ")");
  }

  // Answers a request (once): the promise, the callback (dispatcher) or the client's handler.
  void Deliver(Pending& p, Reply r) {
    if (p.promise) {
      p.promise->set_value(std::move(r));
      p.promise.reset();
    } else if (p.callback) {
      Post([cb = std::move(p.callback), r = std::move(r)]() mutable { cb(std::move(r)); });
    } else if (p.on_reply) {
      auto f = std::move(p.on_reply);
      f(std::move(r));
    }
  }

  // Takes request `id` out of the table (answered, expired or dropped): it is done, and its
  // place in the queue or the in-flight window is free. Null if it is not there (any more).
  std::shared_ptr<Pending> TakeLocked(const std::string& id) {
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return nullptr;
    auto p = it->second;
    by_id_.erase(it);
    p->done = true;
    if (p->sent) {
      --in_flight_;
    } else {
      --queued_;
    }
    return p;
  }

  void Complete(const std::string& id, Reply r) {
    std::shared_ptr<Pending> p;
    bool kick = false;
    {
      std::lock_guard lock(mu_);
      p = TakeLocked(id);
      if (!p) return;  // timed out, or a second answer to a resent request
      ++stats_.replies;
      kick = !waiting_.empty();
      room_cv_.notify_all();
    }
    if (kick) cv_.notify_all();
    Deliver(*p, std::move(r));
  }

  // ---- incoming ----

  void OnMessage(mqtt::const_message_ptr msg) {
    const std::string& topic = msg->get_topic();
    std::string why;
    auto in = wire::ParseIncoming(msg->get_payload_str(), &why);
    if (!in) return;  // not ours to read; nothing waits on it
    if (in->kind == wire::Incoming::Kind::kNotification) {
      if (topic.rfind(notify_prefix_, 0) != 0) return;
      std::lock_guard lock(mu_);
      OnNotificationLocked(std::move(*in));
      return;
    }
    // The echoed id names the request; an answer the service could not attach it to ("id": ""
    // for unreadable JSON or an oversized payload) still carries the correlation data (MQTT 5).
    // Only then are the properties read: copying them costs ~20 % of the throughput.
    std::string id = in->id;
    if (id.empty() && version_ == 5) {
      mqtt::properties props = msg->get_properties();
      if (props.contains(mqtt::property::CORRELATION_DATA))
        id = mqtt::get<mqtt::binary>(props, mqtt::property::CORRELATION_DATA);
    }
    if (in->kind == wire::Incoming::Kind::kPong && !in->instance.empty()) {
      std::lock_guard lock(mu_);
      if (!instance_.empty() && instance_ != in->instance) {
        // The service restarted behind an unbroken broker link: its subscriptions are gone.
        ++stats_.service_restarts_seen;
        for (auto& s : subs_)
          if (s->phase == Phase::kActive) RepairLocked(s);
      }
      instance_ = in->instance;
    }
    Complete(id, std::move(in->reply));
  }

  void OnNotificationLocked(wire::Incoming in) {
    auto it = by_server_id_.find(in.subscription_id);
    if (it == by_server_id_.end()) {
      // Its subscribe answer may still be on the way: keep it for a moment.
      if (pending_subscribes_ > 0) {
        orphans_.push_back(std::move(in));
        if (orphans_.size() > 10000) orphans_.pop_front();
      }
      return;
    }
    auto s = it->second;
    if (s->phase != Phase::kActive) return;
    const std::string& op = in.note.operation;
    if (op == "replay_complete") {
      if (in.has_change_seq && (!s->position_known || in.note.change_seq > s->position)) {
        s->position = in.note.change_seq;
        s->position_known = true;
        s->position_seen = s->position;
      }
      if (s->resuming) {
        s->resuming = false;
        SubscriptionEvent ev{SubscriptionEvent::Kind::kResumed, {}, s->position, 0};
        PostEvent(s, ev);
      }
      return;
    }
    if (op == "resync_required") {
      by_server_id_.erase(s->server_id);
      ResyncLocked(s, in.error);
      return;
    }
    if (op != "create" && op != "update" && op != "delete") return;
    if (in.note.seq <= s->server_seq) {  // sent again after another instance adopted it
      ++stats_.duplicates_dropped;
      return;
    }
    if (in.note.seq != s->server_seq + 1) {  // lost on the way: fetch it from the change log
      ++stats_.gaps_repaired;
      RepairLocked(s);
      return;
    }
    s->server_seq = in.note.seq;
    if (!in.has_change_seq) {
      s->log_off = true;
    } else if (s->position_known && in.note.change_seq <= s->position) {
      ++stats_.duplicates_dropped;  // the replay overlaps what we already handed on
      return;
    }
    if (notes_queued_.load() >= o_.notification_queue) {
      ++stats_.overflows;
      ++s->dropped;
      if (!s->overflowing) {
        s->overflowing = true;
        SubscriptionEvent ev{SubscriptionEvent::Kind::kOverflow, {}, s->position, s->dropped};
        PostEvent(s, ev);  // events do not count against the notification queue
      }
      RepairLocked(s);
      return;
    }
    if (in.has_change_seq) {
      s->position = in.note.change_seq;
      s->position_known = true;
      s->position_seen = s->position;
    }
    in.note.seq = ++s->handle_seq;
    PostNote(s, std::move(in.note));
  }

  // ---- the subscription state machine (all under mu_) ----

  void StartLocked(const std::shared_ptr<SubscriptionState>& s) {
    s->phase = Phase::kStarting;
    if (s->mirror) {
      wire::RequestParts parts;
      parts.operation = "meta";
      parts.entity = &s->entity;
      SubmitInternalLocked(parts, [this, s](Reply r) { OnMeta(s, std::move(r)); });
      return;
    }
    if (s->position_known) {
      SubscribeLocked(s);
      return;
    }
    // Where "now" is in the change log: a one-row read says it (metadata.change_seq).
    wire::RequestParts parts;
    parts.operation = "read";
    parts.entity = &s->entity;
    parts.options = R"({"limit":1})";
    SubmitInternalLocked(parts, [this, s](Reply r) {
      std::lock_guard lock(mu_);
      if (s->phase != Phase::kStarting) return;
      if (!r.ok && (r.error.code == kRequestTimeout || r.error.code == kStopped)) {
        s->phase = Phase::kRestart;
        return;
      }
      std::optional<int64_t> cs;
      if (r.ok)
        if (auto v = r.metadata.Get("change_seq")) cs = v->AsInt();
      if (cs) {
        s->position = *cs;
        s->position_known = true;
        s->position_seen = *cs;
      } else if (r.ok) {
        s->log_off = true;  // no change log: live only
      }
      SubscribeLocked(s);
    });
  }

  void SubscribeLocked(const std::shared_ptr<SubscriptionState>& s) {
    if (!s->server_id.empty()) {  // the old one, if the service still has it (external mode)
      by_server_id_.erase(s->server_id);
      SubmitInternalLocked(UnsubscribeParts(s->server_id), [](Reply) {});
      s->server_id.clear();
    }
    s->phase = Phase::kSubscribing;
    ++pending_subscribes_;
    wire::RequestParts parts;
    parts.type = "subscription";
    parts.operation = "subscribe";
    parts.entity = &s->entity;
    const bool since = s->position_known && !s->log_off;
    parts.options =
        wire::SubscribeOptionsJson(s->filters, since ? std::optional(s->position) : std::nullopt);
    SubmitInternalLocked(parts, [this, s](Reply r) { OnSubscribed(s, std::move(r)); });
  }

  void OnSubscribed(const std::shared_ptr<SubscriptionState>& s, Reply r) {
    std::lock_guard lock(mu_);
    --pending_subscribes_;
    std::string id;
    if (r.ok)
      if (auto v = r.data.Get("subscription_id")) id = v->AsString().value_or("");
    if (s->phase != Phase::kSubscribing) {
      if (!id.empty() && !stopping_) {  // unsubscribed meanwhile: end the one just made
        SubmitInternalLocked(UnsubscribeParts(id), [](Reply) {});
      }
      return;
    }
    if (r.ok && !id.empty()) {
      s->server_id = id;
      s->server_seq = 0;
      s->phase = Phase::kActive;
      s->is_active = true;
      s->overflowing = false;
      by_server_id_[id] = s;
      {
        std::lock_guard snap(s->snap_mu);
        s->server_id_seen = id;
      }
      if (!s->ready_set) {
        s->ready_set = true;
        s->ready_promise.set_value(r);
        PostEvent(s, {SubscriptionEvent::Kind::kActive, {}, s->position, 0});
      } else if (!s->resuming || s->log_off) {
        s->resuming = false;
        PostEvent(s, {SubscriptionEvent::Kind::kActive, {}, s->position, 0});
      }
      // Notifications that overtook this answer.
      std::deque<wire::Incoming> keep;
      std::deque<wire::Incoming> mine;
      for (auto& o : orphans_) (o.subscription_id == id ? mine : keep).push_back(std::move(o));
      orphans_ = std::move(keep);
      if (pending_subscribes_ == 0) orphans_.clear();
      for (auto& o : mine) OnNotificationLocked(std::move(o));
      return;
    }
    if (!r.ok && (r.error.code == kRequestTimeout)) {
      s->phase = Phase::kRepair;  // try again once the link allows
      cv_.notify_all();
      return;
    }
    if (!r.ok && r.error.code == kStopped) return;
    if (!r.ok && r.error.code == "resync_required") {
      ResyncLocked(s, r.error);
      return;
    }
    Error e = r.ok ? Error{std::string(kBadResponse), "a subscribe answer without an id"} : r.error;
    EndLocked(s, SubscriptionEvent::Kind::kFailed, e, r.ok ? ErrorReply(e.code, e.message) : r);
  }

  // The subscription lost notifications (gap, overflow, reconnect, service restart): subscribe
  // again from its position once the link and the queue allow (the manager does it).
  void RepairLocked(const std::shared_ptr<SubscriptionState>& s) {
    if (s->phase == Phase::kEnded) return;
    if (!s->server_id.empty()) by_server_id_.erase(s->server_id);
    if (s->phase == Phase::kActive) s->phase = Phase::kRepair;
    s->is_active = false;
    cv_.notify_all();
  }

  void ResyncLocked(const std::shared_ptr<SubscriptionState>& s, const Error& e) {
    if (s->mirror) {  // read the view again, then subscribe from that read
      PostEvent(s, {SubscriptionEvent::Kind::kResyncRequired, e, s->position, 0});
      s->position_known = false;
      s->server_seq = 0;
      s->phase = Phase::kRestart;
      cv_.notify_all();
      return;
    }
    EndLocked(s, SubscriptionEvent::Kind::kResyncRequired, e, ErrorReply(e.code, e.message));
  }

  void EndLocked(const std::shared_ptr<SubscriptionState>& s, SubscriptionEvent::Kind kind,
                 const Error& e, const Reply& ready_reply) {
    if (!s->server_id.empty()) by_server_id_.erase(s->server_id);
    s->phase = Phase::kEnded;
    s->is_active = false;
    if (!s->ready_set) {
      s->ready_set = true;
      s->ready_promise.set_value(ready_reply);
    }
    PostEvent(s, {kind, e, s->position, 0});
    RemoveSubLocked(s);
  }

  void RemoveSubLocked(const std::shared_ptr<SubscriptionState>& s) {
    for (auto it = subs_.begin(); it != subs_.end(); ++it)
      if (*it == s) {
        subs_.erase(it);
        return;
      }
  }

  // Mirror: meta (for the primary key), then the view page by page in key order.
  void OnMeta(const std::shared_ptr<SubscriptionState>& s, Reply r) {
    std::lock_guard lock(mu_);
    if (s->phase != Phase::kStarting) return;
    if (!r.ok && (r.error.code == kRequestTimeout || r.error.code == kStopped)) {
      s->phase = Phase::kRestart;
      return;
    }
    std::string pk;
    if (r.ok)
      if (auto v = r.data.Get("primary_key")) pk = v->AsString().value_or("");
    if (pk.empty()) {
      Error e = r.ok ? Error{std::string(kBadResponse), "meta named no primary key"} : r.error;
      EndLocked(s, SubscriptionEvent::Kind::kFailed, e, ErrorReply(e.code, e.message));
      return;
    }
    s->primary_key = pk;
    s->snapshot.clear();
    s->snapshot_cs_known = false;
    ReadPageLocked(s, std::nullopt);
  }

  void ReadPageLocked(const std::shared_ptr<SubscriptionState>& s, std::optional<Json> after) {
    ReadOptions o;
    if (after) {
      if (!s->filters.empty()) o.filters.push_back(Filter::Group(s->filters));
      o.filters.emplace_back(s->primary_key, "gt", *after);
    } else {
      o.filters = s->filters;
    }
    o.sort.push_back({s->primary_key, "asc", ""});
    wire::RequestParts parts;
    parts.operation = "read";
    parts.entity = &s->entity;
    parts.options = wire::ReadOptionsJson(o);
    SubmitInternalLocked(parts, [this, s, first = !after](Reply r) {
      std::lock_guard lock(mu_);
      if (s->phase != Phase::kStarting) return;
      if (!r.ok) {
        if (r.error.code == kRequestTimeout || r.error.code == kStopped) {
          s->phase = Phase::kRestart;
          return;
        }
        EndLocked(s, SubscriptionEvent::Kind::kFailed, r.error, r);
        return;
      }
      if (first) {
        auto cs = r.metadata.Get("change_seq");
        s->snapshot_cs_known = cs && cs->AsInt();
        s->snapshot_cs = s->snapshot_cs_known ? *cs->AsInt() : 0;
      }
      std::vector<Json> rows = r.data.Elements();
      const int64_t limit = r.metadata.Get("limit").value_or(Json(0)).AsInt().value_or(0);
      std::optional<Json> last;
      if (!rows.empty()) last = rows.back().Get(s->primary_key);
      for (auto& row : rows) s->snapshot.push_back(std::move(row));
      if (last && limit > 0 && static_cast<int64_t>(rows.size()) >= limit) {
        ReadPageLocked(s, last);
        return;
      }
      // The whole view: hand it over, then subscribe from the first page's change_seq.
      auto snapshot = std::make_shared<std::vector<Json>>(std::move(s->snapshot));
      s->snapshot.clear();
      Post([s, snapshot] {
        if (!s->cancelled && s->on_snapshot) s->on_snapshot(*snapshot);
      });
      s->log_off = !s->snapshot_cs_known;
      s->position_known = s->snapshot_cs_known;
      s->position = s->snapshot_cs;
      s->position_seen = s->position;
      SubscribeLocked(s);
    });
  }

  // ---- the dispatcher ----

  void Post(std::function<void()> fn) {
    {
      std::lock_guard lock(dq_mu_);
      dq_.push_back({nullptr, Notification{}, std::move(fn)});
    }
    dq_cv_.notify_one();
  }

  void PostNote(const std::shared_ptr<SubscriptionState>& s, Notification n) {
    ++notes_queued_;
    {
      std::lock_guard lock(dq_mu_);
      dq_.push_back({s, std::move(n), nullptr});
    }
    dq_cv_.notify_one();
  }

  void PostEvent(const std::shared_ptr<SubscriptionState>& s, SubscriptionEvent ev) {
    if (!s->on_event) return;
    Post([s, ev] {
      if (!s->cancelled) s->on_event(ev);
    });
  }

  void PostConnection(ConnectionEvent ev) {
    if (!o_.on_connection) return;
    Post([this, ev] { o_.on_connection(ev); });
  }

  struct Item {
    std::shared_ptr<SubscriptionState> sub;  // set: a notification for it
    Notification note;
    std::function<void()> fn;
  };

  void DispatchLoop() {
    for (;;) {
      Item item;
      {
        std::unique_lock lock(dq_mu_);
        dq_cv_.wait(lock, [&] { return dq_quit_ || !dq_.empty(); });
        if (dq_.empty()) return;
        item = std::move(dq_.front());
        dq_.pop_front();
      }
      if (item.sub) {
        const bool quitting = [&] {
          std::lock_guard lock(dq_mu_);
          return dq_quit_;
        }();
        if (!quitting && !item.sub->cancelled && item.sub->on_note) item.sub->on_note(item.note);
        ++delivered_;
        const size_t left = --notes_queued_;
        if (left == o_.notification_queue / 2) cv_.notify_all();  // repairs may go on
      } else if (item.fn) {
        item.fn();
      }
    }
  }

  // ---- the connection manager ----

  void ManagerLoop() {
    int failures = 0;
    Clock::time_point next_attempt = Clock::now();
    Clock::time_point next_ping = Clock::now() + o_.liveness_interval;
    Clock::time_point next_probe{};
    uint64_t probe_gen = 0;
    for (;;) {
      std::vector<std::pair<std::shared_ptr<Pending>, Reply>> expired;
      bool try_connect = false;
      bool drain = false;
      bool probe = false;
      {
        std::unique_lock lock(mu_);
        if (stopping_) break;
        const auto now = Clock::now();
        if (lost_) {  // a short pause first, then the back-off from its start
          lost_ = false;
          failures = 0;
          next_attempt = now + o_.backoff.Delay(0);
        }
        ExpireLocked(now, expired);
        if (!connected_ && now >= next_attempt) try_connect = true;
        if (connected_ && !ready_ && now >= next_probe) {
          probe = true;
          next_probe = now + kProbeInterval;
        }
        if (connected_ && ready_) {
          RepairDueLocked();
          if (o_.liveness_interval.count() > 0 && now >= next_ping) {
            next_ping = now + o_.liveness_interval;
            if (!subs_.empty()) {
              SubmitInternalLocked(PingParts(), [](Reply) {});
            }
          }
          drain = !waiting_.empty() && in_flight_ < o_.max_in_flight + internal_room_ &&
                  now >= retry_send_at_;
        }
        if (probe) probe_gen = generation_;
        if (expired.empty() && !drain && !try_connect && !probe) {
          Clock::time_point wake = now + std::chrono::milliseconds(250);
          if (!deadlines_.empty()) wake = std::min(wake, deadlines_.begin()->first);
          if (!connected_) wake = std::min(wake, next_attempt);
          if (connected_ && o_.liveness_interval.count() > 0) wake = std::min(wake, next_ping);
          if (connected_ && !ready_) wake = std::min(wake, next_probe);
          if (retry_send_at_ > now) wake = std::min(wake, retry_send_at_);
          cv_.wait_until(lock, wake);
          continue;
        }
      }
      for (auto& [p, r] : expired) Deliver(*p, std::move(r));
      if (probe) Probe(probe_gen);
      if (drain) Drain();
      if (try_connect) {
        std::string reason;
        if (Connect(&reason)) {
          failures = 0;
          next_ping = Clock::now() + o_.liveness_interval;
          next_probe = Clock::now();
        } else {
          ++failures;
          const auto delay = o_.backoff.Delay(failures);
          next_attempt = Clock::now() + delay;
          {
            std::lock_guard lock(mu_);
            ++stats_.connect_failures;
          }
          PostConnection({ConnectionEvent::Kind::kConnectFailed, failures, 0, reason, delay});
        }
      }
    }
    // Stopping: leave the broker politely.
    if (cli_) {
      try {
        // Paho 1.3.11 may not complete the token of a disconnect issued while publishes wait
        // for the broker's receive window (seen in tests): wait a bounded time, then go on.
        if (cli_->is_connected())
          cli_->disconnect(std::chrono::milliseconds(0))->wait_for(std::chrono::milliseconds(500));
      } catch (const mqtt::exception&) {
      }
    }
  }

  // After a (re)connect nothing is sent until the service answers a ping: in external mode the
  // broker may be back before the service has subscribed again, and a request published then
  // reaches nobody. Pings go out directly (not through the queue), every kProbeInterval, until
  // one is answered on this connection.
  void Probe(uint64_t gen) {
    auto p =
        MakePending(PingParts(), std::max(o_.request_timeout, std::chrono::milliseconds(1000)));
    p->internal = true;
    p->on_reply = [this, gen](Reply r) {
      if (!r.ok) return;
      {
        std::lock_guard lock(mu_);
        if (generation_ != gen || !connected_ || ready_) return;
        ready_ = true;
        RepairDueLocked();
      }
      connected_cv_.notify_all();
      cv_.notify_all();
    };
    std::lock_guard send_lock(send_mu_);
    mqtt::async_client* cli = nullptr;
    {
      std::lock_guard lock(mu_);
      if (!connected_ || ready_ || generation_ != gen || stopping_) return;
      p->order = ++order_;
      p->sent = true;
      ++in_flight_;
      by_id_[p->id] = p;
      deadlines_.emplace(p->deadline, p->id);
      cli = cli_.get();
    }
    Publish(cli, *p);  // if it fails the link is going down; the next connection probes again
  }

  void ExpireLocked(Clock::time_point now,
                    std::vector<std::pair<std::shared_ptr<Pending>, Reply>>& out) {
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
      const std::string id = deadlines_.begin()->second;
      deadlines_.erase(deadlines_.begin());
      auto p = TakeLocked(id);
      if (!p) continue;
      ++stats_.timeouts;
      out.emplace_back(p, TimeoutReply(*p, p->sent ? "sent" : "never sent: not connected"));
    }
    if (!out.empty()) room_cv_.notify_all();
  }

  void RepairDueLocked() {
    if (notes_queued_.load() > o_.notification_queue / 2) return;
    std::vector<std::shared_ptr<SubscriptionState>> due;
    for (auto& s : subs_)
      if (s->phase == Phase::kRepair || s->phase == Phase::kRestart) due.push_back(s);
    for (auto& s : due) {
      if (s->phase == Phase::kRestart) {
        StartLocked(s);
        continue;
      }
      if (!s->position_known || s->log_off) {  // nothing to resume from
        ResyncLocked(s, {"resync_required",
                         "notifications may have been missed and the change log cannot say "
                         "which (it is off, or nothing was received yet)"});
        continue;
      }
      ++stats_.resubscribes;
      s->resuming = true;
      SubscribeLocked(s);
    }
  }

  bool Connect(std::string* reason) {
    for (int round = 0; round < 2; ++round) {
      const int version = version_;
      try {
        if (!cli_ || cli_version_ != version) MakeClient(version);
        mqtt::connect_options opts;  // kept alive through connect (Paho 1.2.0 properties)
        ConfigureConnect(opts, version);
        auto token = cli_->connect(opts);
        if (!WaitToken(token, o_.connect_timeout + std::chrono::seconds(2))) {
          *reason = "no CONNACK within the connect timeout";
          return false;
        }
        SetNoDelayOnPeerPort(PortOfUri(o_.server_uri));  // before the first request goes out
        auto sub =
            cli_->subscribe(mqtt::string_collection::create({response_topic_, notify_filter_}),
                            mqtt::iasync_client::qos_collection{1, 1});
        if (!WaitToken(sub, o_.connect_timeout)) {
          *reason = "no SUBACK for the response and notify topics";
          cli_->disconnect();
          return false;
        }
      } catch (const mqtt::exception& e) {
        *reason = e.what();
        // A broker that does not speak MQTT 5 refuses the protocol version: try 3.1.1.
        const int rc = e.get_return_code();
        if (o_.mqtt_version == 0 && version == 5 &&
            (rc == 1 || rc == MQTTASYNC_WRONG_MQTT_VERSION || e.get_reason_code() == 0x84)) {
          std::lock_guard lock(mu_);
          version_ = 4;
          continue;
        }
        return false;
      }
      OnConnected(version);
      return true;
    }
    return false;
  }

  bool WaitToken(const mqtt::token_ptr& t, std::chrono::milliseconds total) {
    const auto until = Clock::now() + total;
    while (Clock::now() < until) {
      if (t->wait_for(std::chrono::milliseconds(100))) return true;
    }
    return false;
  }

  void MakeClient(int version) {
    if (cli_) {
      cli_->disable_callbacks();
      retired_.push_back(std::move(cli_));  // Paho may still hold it: freed with the client
    }
    auto c = version == 5 ? std::make_unique<mqtt::async_client>(
                                o_.server_uri, o_.client_id, mqtt::create_options(MQTTVERSION_5))
                          : std::make_unique<mqtt::async_client>(o_.server_uri, o_.client_id);
    c->set_message_callback([this](mqtt::const_message_ptr m) { OnMessage(std::move(m)); });
    c->set_connection_lost_handler([this](const std::string& cause) { OnLost(cause); });
    c->set_disconnected_handler([this](const mqtt::properties&, mqtt::ReasonCode rc) {
      OnLost("the broker disconnected us (reason " + std::to_string(int(rc)) + ")");
    });
    std::lock_guard lock(mu_);
    cli_ = std::move(c);
    cli_version_ = version;
  }

  void ConfigureConnect(mqtt::connect_options& opts, int version) const {
    if (version == 5) {
      opts.set_mqtt_version(MQTTVERSION_5);
      opts.set_clean_start(true);
    } else {
      opts.set_mqtt_version(MQTTVERSION_3_1_1);
      opts.set_clean_session(true);
    }
    opts.set_keep_alive_interval(o_.keep_alive);
    opts.set_connect_timeout(o_.connect_timeout);
    opts.set_automatic_reconnect(false);  // ours: with jitter, and resubscribing
    opts.set_max_inflight(
        static_cast<int>(std::min<size_t>(65535, 2 * (o_.max_in_flight + internal_room_) + 16)));
    if (!o_.username.empty()) opts.set_user_name(o_.username);
    if (!o_.password.empty()) opts.set_password(o_.password);
    const bool tls = o_.server_uri.rfind("ssl://", 0) == 0 ||
                     o_.server_uri.rfind("wss://", 0) == 0 ||
                     o_.server_uri.rfind("mqtts://", 0) == 0;
    if (tls) {
      mqtt::ssl_options ssl;
      if (!o_.ca_file.empty()) ssl.set_trust_store(o_.ca_file);
      if (!o_.cert_file.empty()) ssl.set_key_store(o_.cert_file);
      if (!o_.key_file.empty()) ssl.set_private_key(o_.key_file);
      ssl.set_enable_server_cert_auth(true);
      ssl.set_verify(true);
      opts.set_ssl(std::move(ssl));
    }
  }

  void OnConnected(int version) {
    {
      std::lock_guard lock(mu_);
      connected_ = true;
      ready_ = false;
      lost_ = false;
      ++generation_;
      ++stats_.connects;
      // A clean session: the service's subscriptions of the last connection are gone (embedded)
      // or orphaned (external; SubscribeLocked ends them). Resume each from its position.
      for (auto& s : subs_)
        if (s->phase == Phase::kActive) RepairLocked(s);
    }
    cv_.notify_all();
    PostConnection({ConnectionEvent::Kind::kConnected, 0, version, "", {}});
  }

  void OnLost(const std::string& cause) {
    std::vector<std::shared_ptr<Pending>> resend;
    {
      std::lock_guard lock(mu_);
      if (!connected_) return;
      connected_ = false;
      ready_ = false;
      lost_ = true;
      ++generation_;
      ++stats_.disconnects;
      // Unanswered requests go out again after the reconnect, in their order, with the same
      // id and payload (a write is applied once: protocol §8).
      for (auto& [id, p] : by_id_)
        if (p->sent) resend.push_back(p);
      std::sort(resend.begin(), resend.end(),
                [](const auto& a, const auto& b) { return a->order < b->order; });
      for (auto it = resend.rbegin(); it != resend.rend(); ++it) {
        (*it)->sent = false;
        waiting_.push_front(*it);
      }
      in_flight_ -= resend.size();
      queued_ += resend.size();
      stats_.requests_resent += resend.size();
    }
    cv_.notify_all();
    PostConnection({ConnectionEvent::Kind::kDisconnected, 0, 0,
                    cause.empty() ? "connection lost" : cause, o_.backoff.Delay(0)});
  }

  ClientOptions o_;
  const std::string nonce_;
  std::string request_topic_, response_topic_, notify_filter_, notify_prefix_;
  std::atomic<uint64_t> next_id_{0};
  static constexpr size_t internal_room_ = 64;  // the client's own requests beyond max_in_flight

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;            // wakes the manager
  mutable std::condition_variable room_cv_;       // room in the queue / a request ended
  mutable std::condition_variable connected_cv_;  // connected_ changed
  std::condition_variable stopped_cv_;
  bool started_ = false, stopping_ = false, stopped_ = false;
  bool connected_ = false, lost_ = false;
  bool ready_ = false;  // the service answered a ping on this connection: requests may go
  static constexpr std::chrono::milliseconds kProbeInterval{200};
  uint64_t generation_ = 0;
  int version_ = 5;
  int cli_version_ = 0;
  std::unordered_map<std::string, std::shared_ptr<Pending>> by_id_;
  std::deque<std::shared_ptr<Pending>> waiting_;
  std::multimap<Clock::time_point, std::string> deadlines_;
  size_t queued_ = 0, in_flight_ = 0;
  uint64_t order_ = 0;
  Clock::time_point retry_send_at_{};
  std::vector<std::shared_ptr<SubscriptionState>> subs_;
  std::unordered_map<std::string, std::shared_ptr<SubscriptionState>> by_server_id_;
  std::deque<wire::Incoming> orphans_;
  int pending_subscribes_ = 0;
  std::string instance_;
  ClientStats stats_;

  std::mutex send_mu_;

  std::mutex dq_mu_;
  std::condition_variable dq_cv_;
  std::deque<Item> dq_;
  bool dq_quit_ = false;
  std::atomic<size_t> notes_queued_{0};
  std::atomic<uint64_t> delivered_{0};

  std::thread manager_, dispatcher_;
  std::vector<std::unique_ptr<mqtt::async_client>> retired_;
  std::unique_ptr<mqtt::async_client> cli_;  // last: destroyed first
};

// ---- Subscription ----

std::shared_future<Reply> Subscription::Ready() const {
  if (!state_) {
    std::promise<Reply> p;
    p.set_value(ErrorReply(kInvalidRequest, "an empty Subscription handle"));
    return p.get_future().share();
  }
  return state_->ready;
}

std::string Subscription::server_id() const {
  if (!state_) return "";
  std::lock_guard lock(state_->snap_mu);
  return state_->server_id_seen;
}

int64_t Subscription::position() const { return state_ ? state_->position_seen.load() : 0; }

bool Subscription::active() const { return state_ && state_->is_active.load(); }

// ---- Client ----

Client::Client(ClientOptions options) : impl_(std::make_shared<ClientImpl>(std::move(options))) {}
Client::~Client() { impl_->Stop(); }
void Client::Start() { impl_->Start(); }
void Client::Stop() { impl_->Stop(); }
bool Client::WaitConnected(std::chrono::milliseconds timeout) const {
  return impl_->WaitConnected(timeout);
}
bool Client::connected() const { return impl_->connected(); }
ClientStats Client::stats() const { return impl_->stats(); }

namespace {

wire::RequestParts Parts(std::string_view op, const Entity& e) {
  wire::RequestParts p;
  p.operation = op;
  p.entity = &e;
  return p;
}

std::string CheckData(std::string_view op, const Json& data) {
  if (op == "create" && !data.is_object() && !data.is_array())
    return "create needs an object or an array of objects";
  if (op == "update" && !data.is_object()) return "update needs an object of fields";
  return "";
}

}  // namespace

#define MQTTSPEC_CHECK_ENTITY(e, ...)                       \
  if (std::string bad = wire::CheckEntity(e); !bad.empty()) \
  return impl_->Refuse(std::move(bad) __VA_OPT__(, ) __VA_ARGS__)

std::future<Reply> Client::Read(const Entity& e, const ReadOptions& o, Ms timeout) {
  MQTTSPEC_CHECK_ENTITY(e);
  auto p = Parts("read", e);
  p.options = wire::ReadOptionsJson(o);
  return impl_->Call(p, timeout);
}

std::future<Reply> Client::Read(const Entity& e, const Json& key, Ms timeout) {
  MQTTSPEC_CHECK_ENTITY(e);
  auto p = Parts("read", e);
  p.record_id = &key;
  return impl_->Call(p, timeout);
}

std::future<Reply> Client::Create(const Entity& e, const Json& data, Ms timeout) {
  MQTTSPEC_CHECK_ENTITY(e);
  if (std::string bad = CheckData("create", data); !bad.empty()) return impl_->Refuse(bad);
  auto p = Parts("create", e);
  p.data = &data;
  return impl_->Call(p, timeout);
}

std::future<Reply> Client::Update(const Entity& e, const Json& key, const Json& fields,
                                  Ms timeout) {
  MQTTSPEC_CHECK_ENTITY(e);
  if (std::string bad = CheckData("update", fields); !bad.empty()) return impl_->Refuse(bad);
  auto p = Parts("update", e);
  p.record_id = &key;
  p.data = &fields;
  return impl_->Call(p, timeout);
}

std::future<Reply> Client::Delete(const Entity& e, const Json& key, Ms timeout) {
  MQTTSPEC_CHECK_ENTITY(e);
  auto p = Parts("delete", e);
  p.record_id = &key;
  return impl_->Call(p, timeout);
}

std::future<Reply> Client::Meta(const Entity& e, Ms timeout) {
  MQTTSPEC_CHECK_ENTITY(e);
  return impl_->Call(Parts("meta", e), timeout);
}

std::future<Reply> Client::Ping(Ms timeout) { return impl_->Call(PingParts(), timeout); }

void Client::Read(const Entity& e, const ReadOptions& o, ReplyCallback cb, Ms timeout) {
  MQTTSPEC_CHECK_ENTITY(e, std::move(cb));
  auto p = Parts("read", e);
  p.options = wire::ReadOptionsJson(o);
  impl_->Call(p, std::move(cb), timeout);
}

void Client::Read(const Entity& e, const Json& key, ReplyCallback cb, Ms timeout) {
  MQTTSPEC_CHECK_ENTITY(e, std::move(cb));
  auto p = Parts("read", e);
  p.record_id = &key;
  impl_->Call(p, std::move(cb), timeout);
}

void Client::Create(const Entity& e, const Json& data, ReplyCallback cb, Ms timeout) {
  MQTTSPEC_CHECK_ENTITY(e, std::move(cb));
  if (std::string bad = CheckData("create", data); !bad.empty())
    return impl_->Refuse(bad, std::move(cb));
  auto p = Parts("create", e);
  p.data = &data;
  impl_->Call(p, std::move(cb), timeout);
}

void Client::Update(const Entity& e, const Json& key, const Json& fields, ReplyCallback cb,
                    Ms timeout) {
  MQTTSPEC_CHECK_ENTITY(e, std::move(cb));
  if (std::string bad = CheckData("update", fields); !bad.empty())
    return impl_->Refuse(bad, std::move(cb));
  auto p = Parts("update", e);
  p.record_id = &key;
  p.data = &fields;
  impl_->Call(p, std::move(cb), timeout);
}

void Client::Delete(const Entity& e, const Json& key, ReplyCallback cb, Ms timeout) {
  MQTTSPEC_CHECK_ENTITY(e, std::move(cb));
  auto p = Parts("delete", e);
  p.record_id = &key;
  impl_->Call(p, std::move(cb), timeout);
}

void Client::Meta(const Entity& e, ReplyCallback cb, Ms timeout) {
  MQTTSPEC_CHECK_ENTITY(e, std::move(cb));
  impl_->Call(Parts("meta", e), std::move(cb), timeout);
}

#undef MQTTSPEC_CHECK_ENTITY

Subscription Client::Subscribe(const Entity& e, std::vector<Filter> filters,
                               NotificationCallback cb, SubscribeOptions options) {
  return impl_->Subscribe(e, std::move(filters), std::move(cb), std::move(options), false, {});
}

std::future<Reply> Client::Unsubscribe(const Subscription& s) {
  if (!s.state_) return impl_->Refuse("an empty Subscription handle");
  return impl_->Unsubscribe(s.state_);
}

Subscription Client::Mirror(const Entity& e, std::vector<Filter> filters, MirrorCallbacks cb) {
  SubscribeOptions so;
  so.on_event = std::move(cb.on_event);
  return impl_->Subscribe(e, std::move(filters), std::move(cb.on_change), std::move(so), true,
                          std::move(cb.on_snapshot));
}

}  // namespace mqttspec::client
