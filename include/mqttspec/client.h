#pragma once
// mqttspec::Client — the C++ client SDK of mqttspec (library mqttspec_client, CMake target
// mqttspec::client; built on Paho MQTT C++).
//
//   mqttspec::ClientOptions o;
//   o.server_uri = "tcp://localhost:1883";
//   o.client_id = "sensor-7";
//   mqttspec::Client client(o);
//   client.Start();                                    // connects in the background
//   auto r = client.Create("readings", mqttspec::Json::Object({{"room", "lab"}, {"t", 21.5}}))
//                .get();                               // a Reply: data, or the protocol's error
//   if (!r) std::cerr << r.error.code << ": " << r.error.message << "\n";
//
//   auto sub = client.Subscribe("readings", {{"room", "eq", "lab"}},
//                               [](const mqttspec::Notification& n) { … n.row … });
//
// What it does for you
// - Requests are JSON built from typed arguments, matched to their answers by request id (and
//   by MQTT 5 correlation data when the broker speaks MQTT 5). Each call has a timeout; every
//   error is a value carrying the protocol's `code` and `message` (docs/protocol.md §9), or one
//   of the client's own codes (kRequestTimeout, …, below).
// - The connection is kept by a connection manager: full-jitter exponential back-off
//   (mqttspec::Backoff), connect / disconnect events, a Stop() that returns once every thread
//   and callback is done.
// - Subscriptions survive reconnects and restarts of the service: after any reconnect (and
//   when the service restarted underneath an unbroken broker link, seen by a periodic ping) the
//   client subscribes again with `since_change_seq` = the last change it accepted, so the
//   callback sees every change exactly once and in commit order. A `seq` gap (a notification
//   lost on the way) and an overflowing notification queue are repaired the same way. When the
//   change log cannot serve (trimmed, or off), the subscription reports kResyncRequired; the
//   Mirror helper then reads the view again and resubscribes by itself.
// - Back-pressure: at most `max_in_flight` requests are unanswered at a time; the rest wait in a
//   queue of `max_queued` (also while disconnected). When it is full the caller chooses: block,
//   fail fast, or drop the oldest waiting request. Notifications pass through a bounded queue of
//   their own, so a slow callback is reported (kOverflow) and repaired, never silently lossy.
// - Unanswered requests are sent again after a reconnect with the same id and payload: the
//   service's deduplication (protocol §8) applies a write once however often it arrives.
//
// Threading: every method of Client may be called from any thread. Callbacks (notifications,
// subscription events, connection events, the callback forms of requests) run one at a time on
// the client's dispatcher thread, in order; a callback may call Client methods but should not
// wait on a future of this client for long (it holds up the other callbacks). Futures are
// fulfilled from the MQTT library's thread, so waiting on one never needs the dispatcher.
//
// Ownership: Client owns its threads and its MQTT connection; Subscription handles share the
// subscription's state with the client and may outlive it (they then do nothing).

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mqttspec/backoff.h"

namespace mqttspec {
namespace client {

// A JSON value held as compact text. Build one from a C++ value (a string becomes a JSON string),
// with Object / Array, or from JSON text with Parse. Read one with the As… and Get accessors
// (each parses the text), or hand text() to the JSON library of your choice.
class Json {
 public:
  Json() : text_("null") {}
  Json(std::nullptr_t) : text_("null") {}          // NOLINT: implicit by design, as for all scalars
  Json(bool v) : text_(v ? "true" : "false") {}    // NOLINT
  Json(int v) : text_(std::to_string(v)) {}        // NOLINT
  Json(long v) : text_(std::to_string(v)) {}       // NOLINT
  Json(long long v) : text_(std::to_string(v)) {}  // NOLINT
  Json(unsigned v) : text_(std::to_string(v)) {}   // NOLINT
  Json(unsigned long v) : text_(std::to_string(v)) {}        // NOLINT
  Json(unsigned long long v) : text_(std::to_string(v)) {}   // NOLINT
  Json(double v);                                            // NOLINT; NaN/∞ become null
  Json(const char* s) : Json(std::string_view(s)) {}         // NOLINT
  Json(const std::string& s) : Json(std::string_view(s)) {}  // NOLINT
  Json(std::string_view s);                                  // NOLINT: a JSON string

  static Json Object(std::initializer_list<std::pair<std::string_view, Json>> fields);
  static Json Object(const std::vector<std::pair<std::string, Json>>& fields);
  static Json Array(std::initializer_list<Json> items);
  static Json Array(const std::vector<Json>& items);
  // JSON text → a value; nullopt when the text is not one valid JSON value.
  static std::optional<Json> Parse(std::string_view text);

  const std::string& text() const { return text_; }
  bool is_null() const { return text_ == "null"; }
  bool is_object() const { return !text_.empty() && text_[0] == '{'; }
  bool is_array() const { return !text_.empty() && text_[0] == '['; }

  // A member of an object, an element of an array; nullopt when there is none.
  std::optional<Json> Get(std::string_view key) const;
  std::optional<Json> At(size_t index) const;
  // The members' names of an object, the elements of an array (empty for anything else).
  std::vector<std::string> Keys() const;
  std::vector<Json> Elements() const;
  // The value as a C++ value; nullopt when it is not of that kind.
  std::optional<std::string> AsString() const;
  std::optional<int64_t> AsInt() const;
  std::optional<double> AsDouble() const;  // any number
  std::optional<bool> AsBool() const;

  friend bool operator==(const Json& a, const Json& b) { return a.text_ == b.text_; }

 private:
  friend struct JsonAccess;  // the client's wire code: text it wrote or checked itself
  struct Raw {};
  Json(Raw, std::string text) : text_(std::move(text)) {}
  std::string text_;
};

// A model: "entity" (schema public) or "schema.entity".
struct Entity {
  Entity(const char* qualified) : Entity(std::string_view(qualified)) {}         // NOLINT
  Entity(const std::string& qualified) : Entity(std::string_view(qualified)) {}  // NOLINT
  Entity(std::string_view qualified);                                            // NOLINT
  Entity(std::string schema_name, std::string entity_name)
      : schema(std::move(schema_name)), name(std::move(entity_name)) {}
  std::string schema = "public";
  std::string name;
};

// One filter of protocol §4.1: {column, operator, value}, or a group of filters. `logic` is how
// it joins the filters before it: "AND" (default) or "OR".
struct Filter {
  Filter(std::string c, std::string o, Json v, std::string l = "AND")
      : column(std::move(c)), op(std::move(o)), value(std::move(v)), logic(std::move(l)) {}
  static Filter Group(std::vector<Filter> fs, std::string l = "AND") {
    Filter f("", "", nullptr, std::move(l));
    f.group = std::move(fs);
    return f;
  }
  std::string column;
  std::string op;  // eq, neq, gt, gte, lt, lte, like, ilike, in, not_in, is_null, is_not_null
  Json value;      // ignored by is_null / is_not_null; an array for in / not_in
  std::string logic;
  std::vector<Filter> group;  // non-empty: this is a group; column/op/value are unused
};

struct Sort {
  std::string column;
  std::string direction = "asc";  // or "desc"
  std::string nulls;              // "", "first" or "last"
};

struct ReadOptions {
  std::vector<Filter> filters;
  std::vector<Sort> sort;
  std::vector<std::string> columns;       // empty: all
  std::vector<std::string> omit_columns;  // empty: none
  std::optional<int64_t> limit;           // absent: the service's cap (limits.max_rows)
  std::optional<int64_t> offset;
};

// Codes of errors the client makes itself (the service's codes are protocol §9's).
inline constexpr std::string_view kRequestTimeout = "request_timeout";  // no answer in time
inline constexpr std::string_view kQueueFull = "queue_full";  // fail-fast and the queue was full
inline constexpr std::string_view kDropped = "dropped";       // drop-oldest pushed it out
inline constexpr std::string_view kStopped = "stopped";       // Stop() before it was answered
inline constexpr std::string_view kInvalidRequest = "invalid_request";  // refused before sending
inline constexpr std::string_view kBadResponse = "bad_response";        // an answer we cannot read

struct Error {
  std::string code;        // the protocol's code (protocol §9) or one of the k… codes above
  std::string message;     // for humans
  bool committed = false;  // protocol §5: the write took effect despite the error
};

// The answer to a request: data (and metadata on reads) on success, else error.
struct Reply {
  bool ok = false;
  Error error;
  Json data;
  Json metadata;          // reads: {total, count, limit, offset, change_seq}; else null
  std::string timestamp;  // the service's
  explicit operator bool() const { return ok; }
};

using ReplyCallback = std::function<void(Reply)>;

// What happens to a request when `max_queued` requests are already waiting.
enum class Overflow {
  kBlock,       // the call waits for room (at most the request's timeout; then kRequestTimeout)
  kFailFast,    // the call's reply is at once kQueueFull
  kDropOldest,  // the oldest waiting request is answered kDropped and this one takes its place
};

struct ConnectionEvent {
  enum class Kind { kConnected, kDisconnected, kConnectFailed } kind;
  int attempt = 0;       // failed attempts before this event (kConnectFailed: including this one)
  int mqtt_version = 0;  // kConnected: 5 or 4 (3.1.1)
  std::string reason;    // kDisconnected / kConnectFailed: why, as the MQTT library put it
  std::chrono::milliseconds next_attempt_in{0};  // kConnectFailed / kDisconnected
};

// A change of a subscribed entity (protocol §12).
struct Notification {
  std::string operation;   // "create", "update" or "delete"
  Json row;                // the row with every field (the deleted row for a delete)
  bool match = true;       // false: an update took the row out of the subscription's filters
  uint64_t seq = 0;        // 1, 2, 3, … per subscription handle, counting what this callback saw
  int64_t change_seq = 0;  // the change's place in the database's change log (0: log off)
  std::string schema, entity;
  std::string timestamp;
};

// Something that happened to a subscription besides a change.
struct SubscriptionEvent {
  enum class Kind {
    kActive,          // the service accepted it: the first time, and again when it had to start
                      // over (after kResyncRequired in a Mirror, or live without a change log)
    kResumed,         // it caught up after a reconnect, a gap or an overflow: nothing missed
    kOverflow,        // the notification queue was full; `dropped` were set aside and will be
                      // replayed from the change log (no change is lost)
    kResyncRequired,  // the change log cannot fill a gap: read again and resubscribe (Mirror
                      // does it by itself); the subscription is ended
    kFailed,          // the service refused it (error); the subscription is ended
  } kind;
  Error error;
  int64_t change_seq = 0;  // where the subscription stands
  uint64_t dropped = 0;    // kOverflow
};

using NotificationCallback = std::function<void(const Notification&)>;
using SubscriptionEventCallback = std::function<void(const SubscriptionEvent&)>;

struct SubscribeOptions {
  // Start after this change (protocol §12.1: replay, then live). Absent: from now.
  std::optional<int64_t> since_change_seq;
  SubscriptionEventCallback on_event;
};

class ClientImpl;
struct SubscriptionState;

// A handle on a subscription. Copyable; all copies name the same subscription.
class Subscription {
 public:
  Subscription() = default;
  bool valid() const { return state_ != nullptr; }
  // The first answer of the service: ok, or why it refused.
  std::shared_future<Reply> Ready() const;
  // The subscription id the service gave it most recently ("" before the first answer); it
  // changes when the client resubscribes.
  std::string server_id() const;
  // The change_seq of the last change handed to the callback (or the subscribe position).
  int64_t position() const;
  bool active() const;  // accepted, not ended, not unsubscribed

 private:
  friend class ClientImpl;
  friend class Client;
  explicit Subscription(std::shared_ptr<SubscriptionState> s) : state_(std::move(s)) {}
  std::shared_ptr<SubscriptionState> state_;
};

// Mirror: keep a filtered view of a table exact. on_snapshot gets every row of the view (read
// page by page in primary-key order); on_change every change after it. After kResyncRequired the
// client reads again (on_snapshot once more: replace the view) and resubscribes.
struct MirrorCallbacks {
  std::function<void(const std::vector<Json>& rows)> on_snapshot;
  NotificationCallback on_change;
  SubscriptionEventCallback on_event;
};

struct ClientOptions {
  std::string server_uri = "tcp://localhost:1883";  // tcp://, ssl://, ws://, wss://
  std::string client_id;                            // the MQTT client id: required
  std::string topic_prefix = "spec";                // the service's topics.prefix
  std::string username, password;
  int mqtt_version = 0;  // 5, 4 (3.1.1), or 0: MQTT 5, falling back to 3.1.1 if refused
  std::string ca_file, cert_file, key_file;  // ssl:// and wss://
  std::chrono::seconds keep_alive{30};
  std::chrono::seconds connect_timeout{5};
  Backoff backoff{};

  std::chrono::milliseconds request_timeout{10000};  // default per-call timeout
  size_t max_in_flight = 256;                        // requests sent and not yet answered
  size_t max_queued = 10000;  // requests waiting to be sent (also while disconnected)
  Overflow overflow = Overflow::kBlock;
  size_t notification_queue = 10000;  // notifications waiting for their callback
  // How often to ping the service while subscriptions exist, to see a restart of the service
  // behind an unbroken broker link (0: never).
  std::chrono::milliseconds liveness_interval{5000};

  std::function<void(const ConnectionEvent&)> on_connection;
};

// Counters for monitoring and tests.
struct ClientStats {
  uint64_t connects = 0, disconnects = 0, connect_failures = 0;
  uint64_t requests_sent = 0, requests_resent = 0, replies = 0, timeouts = 0;
  uint64_t notifications_delivered = 0, duplicates_dropped = 0, gaps_repaired = 0;
  uint64_t overflows = 0, resubscribes = 0, service_restarts_seen = 0;
  size_t queued = 0, in_flight = 0;
};

class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();  // Stop()
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Begins connecting in the background. Requests made before the connection is up wait in
  // the queue.
  void Start();
  // Disconnects, answers every waiting request kStopped, ends every subscription and returns
  // once no thread of the client runs and no callback will be called again. Idempotent.
  void Stop();
  // Waits until connected to the broker, subscribed to its topics, and answered by the service
  // (after each connect the client pings until the service answers, and sends nothing else
  // before: in external mode the broker may be back before the service is). False on timeout or
  // after Stop().
  bool WaitConnected(std::chrono::milliseconds timeout) const;
  bool connected() const;  // to the broker
  ClientStats stats() const;

  // Requests. Each returns at once; the future (or the callback, on the dispatcher thread)
  // receives the Reply. `timeout` 0: the client's request_timeout.
  using Ms = std::chrono::milliseconds;
  std::future<Reply> Read(const Entity& e, const ReadOptions& o = {}, Ms timeout = Ms(0));
  std::future<Reply> Read(const Entity& e, const Json& key, Ms timeout = Ms(0));
  std::future<Reply> Create(const Entity& e, const Json& record_or_records, Ms timeout = Ms(0));
  std::future<Reply> Update(const Entity& e, const Json& key, const Json& fields,
                            Ms timeout = Ms(0));
  std::future<Reply> Delete(const Entity& e, const Json& key, Ms timeout = Ms(0));
  std::future<Reply> Meta(const Entity& e, Ms timeout = Ms(0));
  std::future<Reply> Ping(Ms timeout = Ms(0));

  void Read(const Entity& e, const ReadOptions& o, ReplyCallback cb, Ms timeout = Ms(0));
  void Read(const Entity& e, const Json& key, ReplyCallback cb, Ms timeout = Ms(0));
  void Create(const Entity& e, const Json& record_or_records, ReplyCallback cb, Ms timeout = Ms(0));
  void Update(const Entity& e, const Json& key, const Json& fields, ReplyCallback cb,
              Ms timeout = Ms(0));
  void Delete(const Entity& e, const Json& key, ReplyCallback cb, Ms timeout = Ms(0));
  void Meta(const Entity& e, ReplyCallback cb, Ms timeout = Ms(0));

  // Subscribes to the changes of `e` that match `filters` (protocol §3 subscribe, §12).
  Subscription Subscribe(const Entity& e, std::vector<Filter> filters, NotificationCallback cb,
                         SubscribeOptions options = {});
  // Ends it (answered ok also when the service had already ended it).
  std::future<Reply> Unsubscribe(const Subscription& s);
  // A view that stays exact: snapshot, then changes; re-reads by itself when it must.
  Subscription Mirror(const Entity& e, std::vector<Filter> filters, MirrorCallbacks callbacks);

 private:
  std::shared_ptr<ClientImpl> impl_;
};

}  // namespace client

using client::Client;
using client::ClientOptions;
using client::ClientStats;
using client::ConnectionEvent;
using client::Entity;
using client::Error;
using client::Filter;
using client::Json;
using client::MirrorCallbacks;
using client::Notification;
using client::Overflow;
using client::ReadOptions;
using client::Reply;
using client::Sort;
using client::SubscribeOptions;
using client::Subscription;
using client::SubscriptionEvent;

}  // namespace mqttspec
