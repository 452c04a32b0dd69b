#pragma once
// Session: mqttspecctl's connection to mqttspecd's gRPC front (admin.listen) and the one place
// that makes calls and turns their failures into an error line and an exit code. Every call
// carries `authorization: Bearer <token>` (when a token is given) and `mqttspec-client:
// mqttspecctl`; unary calls have the --timeout deadline, streams none.
// Thread-safety: one thread makes calls; PrepareContext'ed contexts may be cancelled from another.

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "mqttspec/admin/v1/admin.grpc.pb.h"
#include "mqttspec/v1/query.grpc.pb.h"
#include "common/error.h"
#include "tools/mqttspecctl/output.h"

namespace mqttspec::ctl {

namespace admin_api = ::mqttspec::admin::v1;
namespace query_api = ::mqttspec::v1;

// The process's exit codes (see main.cc).
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,        // the daemon answered with an error
  kExitUsage = 2,        // bad command line (also a bad --filter or JSON argument)
  kExitUnreachable = 3,  // no connection to the daemon
  kExitInterrupted = 130,
};

// Prints `mqttspecctl: <message>` on one line to stderr; returns kExitUsage.
int UsageError(std::string_view message);

// The options every command shares.
struct GlobalOptions {
  std::string addr = "127.0.0.1:50051";
  std::string token;
  bool json = false;
  double timeout_s = 10;
  // TLS (mqttspecd's admin.tls): on with `tls` or any file below. `ca_file`: the CA that signed
  // the daemon's certificate (empty: the system's roots); `cert_file` + `key_file`: this client's
  // certificate, for an admin.tls with ca_file; `server_name`: the name to verify (default: the
  // host of `addr`).
  bool tls = false;
  std::string ca_file, cert_file, key_file, server_name;
};

// The channel to the daemon that `options` describe. A TLS file that cannot be read, or a
// certificate without its key, is a usage error: the message names the option.
Result<std::shared_ptr<grpc::Channel>> OpenChannel(const GlobalOptions& options);

// How a call ended: its status and the protocol's error code (trailing metadata
// `mqttspec-error-code`, "" when absent).
struct CallResult {
  grpc::Status status;
  std::string protocol_code;
};

class Session {
 public:
  Session(GlobalOptions options, std::shared_ptr<grpc::Channel> channel);

  // Waits (at most 3 s, or --timeout if shorter) until the daemon accepts the connection; once
  // per session (later calls return the first outcome). Returns kExitOk, or prints "cannot
  // reach" and returns kExitUnreachable. Call and Show connect first by themselves.
  int Connect();

  bool json() const { return options_.json; }

  // Calls a unary method of either service without printing anything. REQUIRES: connected.
  template <class Stub, class Req, class Resp>
  CallResult Invoke(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                    const Req& request, Resp* response) {
    grpc::ClientContext ctx;
    PrepareContext(ctx, /*deadline=*/true);
    grpc::Status status = (StubFor<Stub>().*method)(&ctx, request, response);
    return {status, status.ok() ? "" : ProtocolCode(ctx)};
  }

  // Invoke, and on failure Report: kExitOk with *response set, else the failure's exit code.
  template <class Stub, class Req, class Resp>
  int Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
           const Req& request, Resp* response) {
    if (int rc = Connect()) return rc;
    CallResult result = Invoke(method, request, response);
    return result.status.ok() ? kExitOk : Report(result);
  }

  // Call, then print the answer: as JSON with --json, else with print_table(const Resp&).
  template <class Stub, class Req, class Resp, class PrintTable>
  int Show(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
           const Req& request, PrintTable print_table) {
    Resp response;
    if (int rc = Call(method, request, &response)) return rc;
    if (json()) return PrintJson(response) ? kExitOk : kExitError;
    print_table(response);
    return kExitOk;
  }

  admin_api::Admin::Stub& admin() { return *admin_; }

  // Adds the metadata, and with `deadline` the --timeout deadline, to a new context.
  void PrepareContext(grpc::ClientContext& ctx, bool deadline) const;

  // Prints `error: <code>: <message>` for a failed call and returns kExitError; a call that never
  // reached the daemon prints "cannot reach" and returns kExitUnreachable.
  int Report(const CallResult& result) const;

  // The trailing `mqttspec-error-code` of a finished call, or "".
  static std::string ProtocolCode(const grpc::ClientContext& ctx);

 private:
  template <class Stub>
  Stub& StubFor() {
    if constexpr (std::is_same_v<Stub, admin_api::Admin::Stub>) {
      return *admin_;
    } else {
      static_assert(std::is_same_v<Stub, query_api::Query::Stub>);
      return *query_;
    }
  }

  int Unreachable() const;

  GlobalOptions options_;
  std::optional<int> connected_;  // Connect()'s outcome, once known
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<admin_api::Admin::Stub> admin_;
  std::unique_ptr<query_api::Query::Stub> query_;
};

}  // namespace mqttspec::ctl
