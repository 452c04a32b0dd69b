// mqttspec_grpc_bench: the gRPC data API (mqttspec.v1.Query/Read by key) against the transport's
// own cost, a bare grpc++ server of the same service. Driven by bench/run_grpc.sh.
//
//   mqttspec_grpc_bench free-port
//       prints a free TCP port on 127.0.0.1
//   mqttspec_grpc_bench echo-server --listen ADDR
//       mqttspec.v1.Query whose Read answers Response{data: <the request's record_id>} and does
//       nothing else (the other methods: UNIMPLEMENTED); built as server/grpc/grpc_front.cc builds
//       the real one (default health service, reflection, insecure credentials, synchronous
//       service). Runs until SIGINT / SIGTERM.
//   mqttspec_grpc_bench seed --addr ADDR [--token T] --entity E --rows N
//       creates rows 1…N through Query/Create, batches of 1000, as bench/run.sh pre-fills:
//       {"grp": row % 250, "name": "item-<row>", "score": row % 1000 + .25}
//   mqttspec_grpc_bench load --addr ADDR [--token T] --entity E --ids N --inflight K --seconds S
//                            [--warmup S] [--clients C] [--threads T] [--label L]
//       Read(record_id) with ids scattered over 1…N, K calls always outstanding, for warm-up + S
//       seconds; prints one JSON line: calls answered in the S seconds, req/s, p50/p90/p99 (µs)
//       of those calls, errors, and the load generator's own CPU time. The first call is checked
//       before measuring: the echo must return the record_id, the service a row with that id.
//
// The load generator is the asynchronous client API: T threads (default 1), each with its own
// CompletionQueue and K/T outstanding calls on one shared channel (one HTTP/2 connection), so the
// client spends as little CPU per call as grpc++ allows and the same for both servers. Calls carry
// `authorization: Bearer <token>` (with --token) and `mqttspec-client: bench-<slot % C>`: the
// service runs one client's requests one at a time (server/client_executor.h), so C (default 1)
// is how many of its workers K calls can use. The echo gets the same metadata and ignores it.

#include <google/protobuf/util/json_util.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "mqttspec/v1/query.grpc.pb.h"

namespace {

namespace v1 = mqttspec::v1;

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "mqttspec_grpc_bench: %s\n", message.c_str());
  std::exit(1);
}

// --key value pairs after the subcommand.
class Args {
 public:
  Args(int argc, char** argv) {
    for (int i = 2; i < argc; i += 2) {
      std::string k = argv[i];
      if (k.rfind("--", 0) != 0 || i + 1 >= argc) Die("expected --key value, got '" + k + "'");
      values_[k.substr(2)] = argv[i + 1];
    }
  }
  std::string Get(const std::string& k, const std::string& def = "") const {
    auto it = values_.find(k);
    return it == values_.end() ? def : it->second;
  }
  std::string Need(const std::string& k) const {
    auto it = values_.find(k);
    if (it == values_.end()) Die("--" + k + " is required");
    return it->second;
  }
  int64_t Int(const std::string& k, int64_t def) const {
    std::string v = Get(k);
    return v.empty() ? def : std::stoll(v);
  }
  double Real(const std::string& k, double def) const {
    std::string v = Get(k);
    return v.empty() ? def : std::stod(v);
  }

 private:
  std::map<std::string, std::string> values_;
};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// ---- free-port ---------------------------------------------------------------------------------

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    Die("free-port: no socket");
  std::printf("%d\n", ntohs(a.sin_port));
  close(fd);
  return 0;
}

// ---- echo-server -------------------------------------------------------------------------------

// The transport's own cost: the same service, a Read that does no work.
class EchoQuery final : public v1::Query::Service {
 public:
  grpc::Status Read(grpc::ServerContext*, const v1::Request* r, v1::Response* out) override {
    out->mutable_data()->set_string_value(r->record_id());
    return grpc::Status::OK;
  }
};

int EchoServer(const Args& a) {
  const std::string addr = a.Need("listen");
  // SIGINT/SIGTERM blocked before gRPC starts its threads, so that only sigwait below sees them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  // As GrpcFront::Start (server/grpc/grpc_front.cc) builds the real server, plaintext.
  EchoQuery query;
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(addr, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&query);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) Die("echo-server: cannot listen on " + addr);
  server->GetHealthCheckService()->SetServingStatus(true);
  std::fprintf(stderr, "mqttspec_grpc_bench: echo-server on %s (port %d)\n", addr.c_str(), port);

  int sig = 0;
  sigwait(&stop, &sig);
  server->GetHealthCheckService()->SetServingStatus(false);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}

// ---- the client side ---------------------------------------------------------------------------

std::shared_ptr<grpc::Channel> Connect(const std::string& addr) {
  auto channel = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10)))
    Die("cannot connect to " + addr + " within 10 s");
  return channel;
}

void AddMetadata(grpc::ClientContext* ctx, const std::string& token, const std::string& client) {
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  if (!client.empty()) ctx->AddMetadata("mqttspec-client", client);
}

std::string JsonOf(const google::protobuf::Message& m) {
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out);
  return out;
}

std::string Failure(const grpc::Status& st, const grpc::ClientContext& ctx) {
  std::string code;
  auto it = ctx.GetServerTrailingMetadata().find("mqttspec-error-code");
  if (it != ctx.GetServerTrailingMetadata().end())
    code = " (" + std::string(it->second.data(), it->second.size()) + ")";
  return "status " + std::to_string(st.error_code()) + code + ": " + st.error_message();
}

// ---- seed --------------------------------------------------------------------------------------

int Seed(const Args& a) {
  const std::string token = a.Get("token");
  const std::string entity = a.Need("entity");
  const int64_t rows = a.Int("rows", 10000);
  auto stub = v1::Query::NewStub(Connect(a.Need("addr")));
  const int64_t start = NowNs();
  for (int64_t base = 0; base < rows; base += 1000) {
    v1::Request req;
    req.set_id("seed-" + std::to_string(base));
    req.set_schema(a.Get("schema"));
    req.set_entity(entity);
    auto* list = req.mutable_data()->mutable_list_value();
    for (int64_t row = base + 1; row <= std::min(rows, base + 1000); ++row) {
      auto& fields = *list->add_values()->mutable_struct_value()->mutable_fields();
      char name[32];
      std::snprintf(name, sizeof name, "item-%05" PRId64, row);
      fields["grp"].set_number_value(static_cast<double>(row % 250));
      fields["name"].set_string_value(name);
      fields["score"].set_number_value(static_cast<double>(row % 1000) + 0.25);
    }
    grpc::ClientContext ctx;
    AddMetadata(&ctx, token, "bench-seed");
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::Response resp;
    grpc::Status st = stub->Create(&ctx, req, &resp);
    if (!st.ok()) Die("seed: Create of rows " + std::to_string(base + 1) + "… " + Failure(st, ctx));
  }
  std::fprintf(stderr, "mqttspec_grpc_bench: seeded %" PRId64 " rows in %.2f s\n", rows,
               static_cast<double>(NowNs() - start) / 1e9);
  return 0;
}

// ---- load --------------------------------------------------------------------------------------

struct LoadSpec {
  std::string token, schema, entity;
  int64_t ids = 0;
  int clients = 1;
};

v1::Request MakeRequest(const LoadSpec& spec, const std::string& id, int64_t key) {
  v1::Request req;
  req.set_id(id);
  req.set_schema(spec.schema);
  req.set_entity(spec.entity);
  req.set_record_id(std::to_string(key));
  return req;
}

// The echo returns the record_id; the service returns the row, whose id is the record_id.
bool Answers(const v1::Response& resp, int64_t key) {
  const auto& d = resp.data();
  if (d.kind_case() == google::protobuf::Value::kStringValue)
    return d.string_value() == std::to_string(key);
  if (d.kind_case() != google::protobuf::Value::kStructValue) return false;
  auto it = d.struct_value().fields().find("id");
  return it != d.struct_value().fields().end() &&
         it->second.kind_case() == google::protobuf::Value::kNumberValue &&
         it->second.number_value() == static_cast<double>(key);
}

// One outstanding call: a ClientContext serves one call only, so each call gets a new one.
struct Call {
  grpc::ClientContext ctx;
  v1::Response resp;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::Response>> reader;
  int64_t key = 0;
  int64_t start_ns = 0;
};

// What one client thread saw: latencies of the calls answered inside the measured window, errors
// and wrong answers of all.
struct ThreadResult {
  std::vector<int64_t> latency_ns;
  int64_t errors = 0, wrong = 0;
  std::string first_error;
};

// Keeps `slots` calls outstanding on `cq` until `end_ns`, then waits for the last ones.
void Drive(v1::Query::Stub& stub, const LoadSpec& spec, int thread, int first_slot, int slots,
           int64_t window_ns, int64_t end_ns, ThreadResult* out) {
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<Call>> calls(slots);
  int64_t seq = static_cast<int64_t>(thread) * 1000003;  // spreads the threads' keys apart
  auto start = [&](int slot) {
    auto c = std::make_unique<Call>();
    c->key = 1 + (seq * 7919) % spec.ids;  // 7919 is prime: a permutation of 1…ids
    std::string client = "bench-", id = "t";
    client += std::to_string((first_slot + slot) % spec.clients);
    id += std::to_string(thread);
    id += '-';
    id += std::to_string(seq);
    AddMetadata(&c->ctx, spec.token, client);
    const v1::Request req = MakeRequest(spec, id, c->key);
    ++seq;
    c->start_ns = NowNs();
    c->reader = stub.AsyncRead(&c->ctx, req, &cq);
    c->reader->Finish(&c->resp, &c->status, reinterpret_cast<void*>(static_cast<intptr_t>(slot)));
    calls[slot] = std::move(c);
  };
  for (int s = 0; s < slots; ++s) start(s);
  int outstanding = slots;
  void* tag = nullptr;
  bool ok = false;
  while (outstanding > 0 && cq.Next(&tag, &ok)) {
    const int64_t now = NowNs();
    const int slot = static_cast<int>(reinterpret_cast<intptr_t>(tag));
    Call& c = *calls[slot];
    if (!ok || !c.status.ok()) {  // counted in the warm-up too: any error fails the run
      if (out->errors++ == 0) out->first_error = Failure(c.status, c.ctx);
    } else if (!Answers(c.resp, c.key)) {
      if (out->wrong++ == 0) out->first_error = "unexpected answer: " + JsonOf(c.resp);
    } else if (now >= window_ns && now <= end_ns) {
      out->latency_ns.push_back(now - c.start_ns);
    }
    if (now < end_ns) {
      start(slot);
    } else {
      calls[slot].reset();
      --outstanding;
    }
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

int Load(const Args& a) {
  LoadSpec spec;
  spec.token = a.Get("token");
  spec.schema = a.Get("schema");
  spec.entity = a.Need("entity");
  spec.ids = a.Int("ids", 0);
  spec.clients = static_cast<int>(a.Int("clients", 1));
  const int inflight = static_cast<int>(a.Int("inflight", 1));
  const int threads = static_cast<int>(std::min<int64_t>(a.Int("threads", 1), inflight));
  const double seconds = a.Real("seconds", 3), warmup = a.Real("warmup", 1);
  if (spec.ids < 1 || inflight < 1 || threads < 1 || spec.clients < 1 || seconds <= 0)
    Die("load: --ids, --inflight, --threads, --clients and --seconds must be positive");

  auto channel = Connect(a.Need("addr"));
  auto stub = v1::Query::NewStub(channel);

  // One checked call first: a wrong token, entity or empty table fails here, not as 0 req/s.
  {
    grpc::ClientContext ctx;
    AddMetadata(&ctx, spec.token, "bench-0");
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::Response resp;
    const int64_t key = std::max<int64_t>(1, spec.ids / 2);
    grpc::Status st = stub->Read(&ctx, MakeRequest(spec, "check", key), &resp);
    if (!st.ok()) Die("load: the checked Read failed: " + Failure(st, ctx));
    if (!Answers(resp, key))
      Die("load: the checked Read of " + std::to_string(key) + " answered " + JsonOf(resp));
  }

  const double cpu0 = CpuSeconds();
  const int64_t t0 = NowNs();
  const int64_t window_ns = t0 + static_cast<int64_t>(warmup * 1e9);
  const int64_t end_ns = window_ns + static_cast<int64_t>(seconds * 1e9);
  std::vector<ThreadResult> results(threads);
  std::vector<std::thread> pool;
  for (int t = 0, first = 0; t < threads; ++t) {
    const int slots = inflight / threads + (t < inflight % threads ? 1 : 0);
    pool.emplace_back(Drive, std::ref(*stub), std::cref(spec), t, first, slots, window_ns, end_ns,
                      &results[t]);
    first += slots;
  }
  for (auto& th : pool) th.join();
  const double cpu = CpuSeconds() - cpu0;

  std::vector<int64_t> lat;
  int64_t errors = 0, wrong = 0;
  std::string first_error;
  for (auto& r : results) {
    lat.insert(lat.end(), r.latency_ns.begin(), r.latency_ns.end());
    errors += r.errors;
    wrong += r.wrong;
    if (first_error.empty()) first_error = r.first_error;
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {  // nearest rank, in µs
    if (lat.empty()) return 0.0;
    size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(lat.size())));
    return static_cast<double>(lat[std::min(lat.size(), std::max<size_t>(i, 1)) - 1]) / 1e3;
  };
  double mean = 0;
  for (int64_t v : lat) mean += static_cast<double>(v);
  mean = lat.empty() ? 0 : mean / static_cast<double>(lat.size()) / 1e3;
  if (!first_error.empty()) std::fprintf(stderr, "mqttspec_grpc_bench: %s\n", first_error.c_str());
  std::printf(
      "{\"label\":\"%s\",\"inflight\":%d,\"threads\":%d,\"clients\":%d,\"seconds\":%.1f,"
      "\"calls\":%zu,\"errors\":%" PRId64 ",\"wrong\":%" PRId64
      ",\"req_per_s\":%.0f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f,"
      "\"client_cpu_s\":%.2f}\n",
      a.Get("label").c_str(), inflight, threads, spec.clients, seconds, lat.size(), errors, wrong,
      static_cast<double>(lat.size()) / seconds, pct(0.50), pct(0.90), pct(0.99), mean, cpu);
  std::fflush(stdout);
  return errors + wrong > 0 ? 2 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "free-port") return FreePort();
  const Args args(argc, argv);
  if (cmd == "echo-server") return EchoServer(args);
  if (cmd == "seed") return Seed(args);
  if (cmd == "load") return Load(args);
  std::fprintf(
      stderr,
      "usage: mqttspec_grpc_bench free-port | echo-server --listen ADDR | seed --addr ADDR "
      "[--token T] --entity E --rows N | load --addr ADDR [--token T] --entity E --ids N "
      "--inflight K --seconds S [--warmup S] [--clients C] [--threads T] [--label L]\n");
  return 2;
}
