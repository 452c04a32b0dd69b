#include "server/grpc/grpc_front.h"

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>

#include "mqttspec/v1/query.grpc.pb.h"
#include "server/grpc/call_auth.h"
#include "server/topics.h"

namespace mqttspec::server {

namespace v1 = mqttspec::v1;

namespace {

// The protocol's error codes as gRPC status codes.
grpc::StatusCode StatusOf(std::string_view code) {
  if (code == "not_found" || code == "model_not_found") return grpc::StatusCode::NOT_FOUND;
  if (code.rfind("invalid_", 0) == 0 || code == "unknown_column" || code == "payload_too_large")
    return grpc::StatusCode::INVALID_ARGUMENT;
  if (code == "conflict") return grpc::StatusCode::ALREADY_EXISTS;
  if (code == "forbidden") return grpc::StatusCode::PERMISSION_DENIED;
  if (code == "rate_limited" || code == "too_many_subscriptions")
    return grpc::StatusCode::RESOURCE_EXHAUSTED;
  if (code == "resync_required") return grpc::StatusCode::FAILED_PRECONDITION;
  if (code == "timeout") return grpc::StatusCode::DEADLINE_EXCEEDED;
  if (code == "unavailable") return grpc::StatusCode::UNAVAILABLE;
  return grpc::StatusCode::INTERNAL;
}

// A protobuf message as JSON text, for the request the parser reads.
std::string Json(const google::protobuf::Message& m) {
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out);
  return out;
}

}  // namespace

// The unary methods run on gRPC's synchronous-server threads, which may block: a call runs the
// request right there when its caller has nothing else queued or running (Caller::run_here), so
// it costs what the echo of bench/run_grpc.sh costs plus the work; otherwise it waits for its
// turn on the caller's strand. (Measured against the callback API finishing from a worker, and
// against always handing to a worker: bench/RESULTS.md.)
class QueryService final : public v1::Query::Service {
 public:
  QueryService(server::Service& service, NotificationRoutes& routes, std::string token)
      : service_(service), routes_(routes), token_(std::move(token)) {}

  grpc::Status Read(grpc::ServerContext* c, const v1::Request* r, v1::Response* out) override {
    return Run(*c, "read", *r, out);
  }
  grpc::Status Create(grpc::ServerContext* c, const v1::Request* r, v1::Response* out) override {
    return Run(*c, "create", *r, out);
  }
  grpc::Status Update(grpc::ServerContext* c, const v1::Request* r, v1::Response* out) override {
    return Run(*c, "update", *r, out);
  }
  grpc::Status Delete(grpc::ServerContext* c, const v1::Request* r, v1::Response* out) override {
    return Run(*c, "delete", *r, out);
  }
  grpc::Status Meta(grpc::ServerContext* c, const v1::Request* r, v1::Response* out) override {
    return Run(*c, "meta", *r, out);
  }

  // Subscribes as the caller, then streams the subscription's notifications until the caller
  // cancels (or the server stops); the subscription ends with the stream.
  grpc::Status Subscribe(grpc::ServerContext* c, const v1::Request* r,
                         grpc::ServerWriter<v1::Notification>* writer) override {
    Caller caller;
    if (auto st = Admit(*c, &caller); !st.ok()) return st;
    const std::string client = caller.client_id;
    auto queue = std::make_shared<NotificationQueue>();
    // The stream's route exists before a resumed subscription replays (right after the answer,
    // on the same strand), so no replayed notification arrives before it.
    std::string topic;
    auto route = [&](const std::string& json) {
      topic = NotifyTopicOf(json);
      if (!topic.empty()) routes_.Add(topic, [queue](OutboundMessage m) { queue->Push(m); });
    };
    rapidjson::Document answer;
    if (auto st =
            Answer(*c, Call(std::move(caller), Payload("subscribe", *r), route), nullptr, &answer);
        !st.ok()) {
      if (!topic.empty()) routes_.Remove(topic);
      return st;
    }
    const std::string id = answer["data"]["subscription_id"].GetString();
    grpc::Status result = Stream(*c, *writer, *queue, id);
    routes_.Remove(topic);
    if (result.ok()) Unsubscribe(client, id);
    return result;
  }

  void Stop() { stopping_.store(true); }

 private:
  // A Subscribe stream's notifications, queued by NotificationRoutes (any thread), taken by the
  // stream's thread; bounded: a slow stream loses the newest, and its seq shows the gap.
  struct NotificationQueue {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::string> items;

    void Push(OutboundMessage& m) {
      std::lock_guard lock(mu);
      if (items.size() >= kMaxQueued) return;
      items.push_back(std::move(m.payload));
      cv.notify_one();
    }
    // What is queued; with `wait`, after waiting up to 200 ms for something.
    std::deque<std::string> Take(bool wait) {
      std::deque<std::string> batch;
      std::unique_lock lock(mu);
      if (wait) cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return !items.empty(); });
      batch.swap(items);
      return batch;
    }
  };

  // data.notify_topic of a subscribe answer, or "" (an error answer).
  static std::string NotifyTopicOf(const std::string& json) {
    rapidjson::Document d;
    d.Parse(json.c_str(), json.size());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember("data") || !d["data"].IsObject())
      return "";
    auto t = d["data"].FindMember("notify_topic");
    return t != d["data"].MemberEnd() && t->value.IsString() ? t->value.GetString() : "";
  }

  // Writes subscription `id`'s notifications to the stream until the caller cancels, the service
  // stops, the subscription is cancelled or its resume ends it; the status says which (OK: the
  // caller went away).
  grpc::Status Stream(grpc::ServerContext& c, grpc::ServerWriter<v1::Notification>& writer,
                      NotificationQueue& queue, const std::string& id) {
    grpc::Status result = grpc::Status::OK;
    // Writes what is queued; false once the stream must end (`result` says why).
    auto deliver = [&](std::deque<std::string> batch) {
      for (const std::string& json : batch) {
        v1::Notification n;
        if (!ToNotification(json, &n)) continue;
        if (!writer.Write(n)) return false;
        if (n.operation() == "resync_required") {  // the resume could not go on
          c.AddTrailingMetadata("mqttspec-error-code", "resync_required");
          result = {grpc::StatusCode::FAILED_PRECONDITION, n.error_message()};
          return false;
        }
      }
      return true;
    };
    Subscriptions& subscriptions = service_.core().subscriptions();
    while (!c.IsCancelled() && !stopping_.load()) {
      if (!deliver(queue.Take(true))) break;
      if (!subscriptions.Has(id)) {
        // Cancelled: by an operator (Admin/CancelSubscription), or by its resume, whose
        // resync_required notification was queued before the cancel.
        if (!deliver(queue.Take(false)) || !result.ok()) break;
        result = {grpc::StatusCode::ABORTED, fmt::format("subscription {} was cancelled", id)};
        break;
      }
    }
    if (result.ok() && stopping_.load())
      result = {grpc::StatusCode::UNAVAILABLE, "the service is stopping"};
    return result;
  }

  // Ends subscription `id` of `client` as an unsubscribe request would.
  void Unsubscribe(const std::string& client, const std::string& id) {
    rapidjson::StringBuffer unsub;
    rapidjson::Writer<rapidjson::StringBuffer> w(unsub);
    w.StartObject();
    w.Key("type");
    w.String("subscription");
    w.Key("operation");
    w.String("unsubscribe");
    w.Key("subscription_id");
    w.String(id.c_str(), static_cast<rapidjson::SizeType>(id.size()));
    w.EndObject();
    (void)Call(Caller{client, ""}, std::string(unsub.GetString(), unsub.GetSize()));
  }

  // The same request an MQTT client would publish: {"id","type","operation","schema","entity",
  // "record_id","data","options"}.
  static std::string Payload(const char* operation, const v1::Request& r) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("id");
    w.String(r.id().c_str(), static_cast<rapidjson::SizeType>(r.id().size()));
    w.Key("type");
    w.String("request");
    w.Key("operation");
    w.String(operation);
    w.Key("schema");
    w.String(r.schema().c_str(), static_cast<rapidjson::SizeType>(r.schema().size()));
    w.Key("entity");
    w.String(r.entity().c_str(), static_cast<rapidjson::SizeType>(r.entity().size()));
    if (!r.record_id().empty()) {
      w.Key("record_id");
      w.String(r.record_id().c_str(), static_cast<rapidjson::SizeType>(r.record_id().size()));
    }
    if (r.has_data()) {
      const std::string data = Json(r.data());
      w.Key("data");
      w.RawValue(data.data(), data.size(), rapidjson::kObjectType);
    }
    if (r.has_options()) {
      const std::string options = Json(r.options());
      w.Key("options");
      w.RawValue(options.data(), options.size(), rapidjson::kObjectType);
    }
    w.EndObject();
    return {buf.GetString(), buf.GetSize()};
  }

  static constexpr size_t kMaxQueued = 10000;  // notifications waiting for a slow stream

  // The token, and the caller's client id "grpc:<name>".
  grpc::Status Admit(grpc::ServerContextBase& ctx, Caller* caller) {
    // The data API bypasses MQTT authentication, so it is served only with admin.token set.
    if (token_.empty())
      return {grpc::StatusCode::UNAUTHENTICATED,
              "the data API is served only when admin.token is set"};
    if (auto st = CheckBearer(ctx, token_); !st.ok()) return st;
    std::string name = CallMetadata(ctx, "mqttspec-client");
    caller->client_id =
        std::string(kGrpcClientPrefix) + (name.empty() ? std::string("grpc") : name);
    if (!IsValidClientId(caller->client_id))
      return {grpc::StatusCode::INVALID_ARGUMENT,
              "mqttspec-client may not contain '/', '+', '#' and is at most 123 characters"};
    caller->username = CallMetadata(ctx, "mqttspec-username");
    // The caller's connect hooks, on its first call (or first after its state expired). Checked
    // again under the lock, so two first calls do not both run them.
    if (service_.core().clients().known(caller->client_id)) return grpc::Status::OK;
    std::lock_guard lock(admit_mu_);
    if (service_.core().clients().known(caller->client_id)) return grpc::Status::OK;
    auto client = std::make_shared<ClientInfo>();
    client->id = caller->client_id;
    client->username = caller->username;
    client->password = CallMetadata(ctx, "mqttspec-password");
    if (auto st = service_.AdmitCaller(std::move(client)); !st.ok()) {
      ctx.AddTrailingMetadata("mqttspec-error-code", std::string(ErrorCodeName(st.error().code)));
      return {grpc::StatusCode::PERMISSION_DENIED, st.error().message};
    }
    return grpc::Status::OK;
  }

  // Submits one request as `caller` and waits for its answer (the worker that runs it sets it).
  // `on_answer`, if set, sees the answer on the client's strand before anything that follows
  // it there (a resumed subscription's replay).
  std::string Call(Caller caller, std::string payload,
                   const std::function<void(const std::string&)>& on_answer = nullptr) {
    std::promise<std::string> answer;
    auto done = answer.get_future();
    service_.Submit(std::move(caller), std::move(payload),
                    [&answer, &on_answer](std::string response) {
                      if (on_answer) on_answer(response);
                      answer.set_value(std::move(response));
                    });
    return done.get();
  }

  grpc::Status Run(grpc::ServerContext& ctx, const char* operation, const v1::Request& r,
                   v1::Response* out) {
    Caller caller;
    if (auto st = Admit(ctx, &caller); !st.ok()) return st;
    caller.run_here = true;
    rapidjson::Document answer;
    return Answer(ctx, Call(std::move(caller), Payload(operation, r)), out, &answer);
  }

  // A notification's JSON (protocol/render.cc) as the proto message.
  static bool ToNotification(const std::string& json, v1::Notification* n) {
    rapidjson::Document d;
    d.Parse(json.c_str(), json.size());
    if (d.HasParseError() || !d.IsObject()) return false;
    auto text = [&](const char* k) {
      auto it = d.FindMember(k);
      return it != d.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString())
                                                         : std::string();
    };
    n->set_subscription_id(text("subscription_id"));
    n->set_operation(text("operation"));
    n->set_schema(text("schema"));
    n->set_entity(text("entity"));
    n->set_timestamp(text("timestamp"));
    auto number = [&](const char* k) -> uint64_t {
      auto it = d.FindMember(k);
      return it != d.MemberEnd() && it->value.IsUint64() ? it->value.GetUint64() : 0;
    };
    n->set_seq(number("seq"));
    n->set_change_seq(number("change_seq"));
    n->set_replayed(number("replayed"));
    if (auto it = d.FindMember("error"); it != d.MemberEnd() && it->value.IsObject()) {
      if (auto m = it->value.FindMember("message");
          m != it->value.MemberEnd() && m->value.IsString())
        n->set_error_message(m->value.GetString());
    }
    auto match = d.FindMember("match");
    n->set_match(match == d.MemberEnd() || !match->value.IsBool() || match->value.GetBool());
    if (auto it = d.FindMember("data"); it != d.MemberEnd()) {
      rapidjson::StringBuffer buf;
      rapidjson::Writer<rapidjson::StringBuffer> w(buf);
      it->value.Accept(w);
      if (!google::protobuf::util::JsonStringToMessage(std::string(buf.GetString(), buf.GetSize()),
                                                       n->mutable_data())
               .ok())
        return false;
    }
    return true;
  }

  // The service's JSON answer as a Response, or a status with the protocol's code.
  // `d` keeps the parsed answer; `out` may be null (Subscribe reads `d`).
  static grpc::Status Answer(grpc::ServerContextBase& ctx, const std::string& json, v1::Response* out,
                             rapidjson::Document* parsed) {
    rapidjson::Document& d = *parsed;
    d.Parse(json.c_str(), json.size());
    if (d.HasParseError() || !d.IsObject())
      return {grpc::StatusCode::INTERNAL, "unreadable answer"};
    auto member = [&](const char* k) -> const rapidjson::Value* {
      auto it = d.FindMember(k);
      return it == d.MemberEnd() ? nullptr : &it->value;
    };
    const rapidjson::Value* success = member("success");
    if (!success || !success->IsBool() || !success->GetBool()) {
      const rapidjson::Value* err = member("error");
      std::string code = "internal", message = "error";
      if (err && err->IsObject()) {
        if (err->HasMember("code") && (*err)["code"].IsString()) code = (*err)["code"].GetString();
        if (err->HasMember("message") && (*err)["message"].IsString())
          message = (*err)["message"].GetString();
      }
      ctx.AddTrailingMetadata("mqttspec-error-code", code);
      return {StatusOf(code), message};
    }
    auto to_proto = [](const rapidjson::Value& v, google::protobuf::Message* m) {
      rapidjson::StringBuffer buf;
      rapidjson::Writer<rapidjson::StringBuffer> w(buf);
      v.Accept(w);
      return google::protobuf::util::JsonStringToMessage(
                 std::string(buf.GetString(), buf.GetSize()), m)
          .ok();
    };
    if (!out) return grpc::Status::OK;  // the caller reads `parsed`
    if (const rapidjson::Value* data = member("data");
        data && !to_proto(*data, out->mutable_data()))
      return {grpc::StatusCode::INTERNAL, "unrepresentable data"};
    if (const rapidjson::Value* meta = member("metadata");
        meta && meta->IsObject() && !to_proto(*meta, out->mutable_metadata()))
      return {grpc::StatusCode::INTERNAL, "unrepresentable metadata"};
    return grpc::Status::OK;
  }

  server::Service& service_;
  NotificationRoutes& routes_;
  const std::string token_;
  std::mutex admit_mu_;  // one caller identity admitted at a time: its connect hooks run once
  std::atomic<bool> stopping_{false};
};

Result<std::unique_ptr<GrpcFront>> GrpcFront::Start(const Config& config, Service& service,
                                                    NotificationRoutes& routes,
                                                    Transport& broker) {
  const std::string& addr = config.admin.listen;
  if (addr.empty()) return std::unique_ptr<GrpcFront>();
  auto front = std::unique_ptr<GrpcFront>(new GrpcFront());
  front->query_ = std::make_unique<QueryService>(service, routes, config.admin.token);
  front->admin_ = std::make_unique<AdminService>(config, service, broker, front->health_);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (const AdminTlsConfig& t = config.admin.tls; t.enabled) {
    // The files were checked at start-up (tls_files.h); read them for gRPC, which wants PEM text.
    auto read = [](const std::string& path) {
      std::ifstream in(path);
      std::stringstream ss;
      ss << in.rdbuf();
      return ss.str();
    };
    grpc::SslServerCredentialsOptions ssl(
        t.ca_file.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                          : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    if (!t.ca_file.empty()) ssl.pem_root_certs = read(t.ca_file);
    ssl.pem_key_cert_pairs.push_back({read(t.key_file), read(t.cert_file)});
    credentials = grpc::SslServerCredentials(ssl);
  }
  builder.AddListeningPort(addr, credentials, &front->port_);
  builder.RegisterService(front->query_.get());
  builder.RegisterService(front->admin_.get());
  front->server_ = builder.BuildAndStart();
  if (!front->server_ || front->port_ == 0)
    return MakeError(ErrorCode::kUnavailable,
                     fmt::format("admin.listen: cannot listen on {}", addr));
  front->health_thread_ = std::thread([f = front.get(), &service, &broker] {
    f->WatchHealth(service, broker);
  });
  spdlog::info("gRPC: mqttspec.v1.Query, mqttspec.admin.v1.Admin, health and reflection on {} "
               "(port {}, {})",
               addr,
               front->port_,
               !config.admin.tls.enabled          ? "plaintext"
               : config.admin.tls.ca_file.empty() ? "TLS"
                                                  : "TLS with client certificates");
  return front;
}

void GrpcFront::WatchHealth(Service& service, Transport& broker) {
  bool first = true, serving = false;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    const bool db = service.core().database().Ping().ok();
    const bool mqtt = broker.connected();
    health_.database_ok.store(db);
    health_.broker_ok.store(mqtt);
    if (first || serving != (db && mqtt)) {
      serving = db && mqtt;
      server_->GetHealthCheckService()->SetServingStatus(serving);
      if (!first || !serving)
        spdlog::log(serving ? spdlog::level::info : spdlog::level::warn,
                    "health: {} (database {}, broker {})", serving ? "SERVING" : "NOT_SERVING",
                    db ? "up" : "down", mqtt ? "connected" : "not connected");
      first = false;
    }
    lock.lock();
    // Every second while serving; sooner while not, so recovery shows quickly.
    stop_.wait_for(lock, serving ? std::chrono::milliseconds(1000) : std::chrono::milliseconds(200),
                   [&] { return stopping_; });
  }
}

GrpcFront::~GrpcFront() {
  if (!server_) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  stop_.notify_all();
  if (health_thread_.joinable()) health_thread_.join();
  server_->GetHealthCheckService()->SetServingStatus(false);
  query_->Stop();  // open Subscribe streams end
  admin_->Stop();  // open WatchEvents streams end
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

}  // namespace mqttspec::server
