// Session: the channel to mqttspecd, call metadata and deadlines, and the mapping of failed
// calls to mqttspecctl's error line and exit code.

#include "tools/mqttspecctl/session.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>

namespace mqttspec::ctl {

namespace {

constexpr std::chrono::milliseconds kConnectTimeout{3000};

// grpc::StatusCode as the lower-case name of the gRPC specification.
std::string StatusName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "ok";
    case grpc::StatusCode::CANCELLED: return "cancelled";
    case grpc::StatusCode::UNKNOWN: return "unknown";
    case grpc::StatusCode::INVALID_ARGUMENT: return "invalid_argument";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "deadline_exceeded";
    case grpc::StatusCode::NOT_FOUND: return "not_found";
    case grpc::StatusCode::ALREADY_EXISTS: return "already_exists";
    case grpc::StatusCode::PERMISSION_DENIED: return "permission_denied";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "resource_exhausted";
    case grpc::StatusCode::FAILED_PRECONDITION: return "failed_precondition";
    case grpc::StatusCode::ABORTED: return "aborted";
    case grpc::StatusCode::OUT_OF_RANGE: return "out_of_range";
    case grpc::StatusCode::UNIMPLEMENTED: return "unimplemented";
    case grpc::StatusCode::INTERNAL: return "internal";
    case grpc::StatusCode::UNAVAILABLE: return "unavailable";
    case grpc::StatusCode::DATA_LOSS: return "data_loss";
    case grpc::StatusCode::UNAUTHENTICATED: return "unauthenticated";
    default: return fmt::format("status_{}", static_cast<int>(code));
  }
}

// The message on one line: a multi-line gRPC detail would break "one error, one line".
std::string OneLine(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  std::replace(text.begin(), text.end(), '\r', ' ');
  return text;
}

std::chrono::system_clock::time_point After(std::chrono::duration<double> span) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(span);
}

}  // namespace

namespace {

// The whole of a PEM file named by `option`, or a usage error naming it.
Result<std::string> ReadPem(std::string_view option, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  if (in) text << in.rdbuf();
  if (!in || text.str().empty())
    return MakeError(ErrorCode::kInvalidValue, fmt::format("{}: cannot read {}", option, path));
  return text.str();
}

}  // namespace

Result<std::shared_ptr<grpc::Channel>> OpenChannel(const GlobalOptions& o) {
  const bool tls = o.tls || !o.ca_file.empty() || !o.cert_file.empty() || !o.key_file.empty() ||
                   !o.server_name.empty();
  if (!tls) return grpc::CreateChannel(o.addr, grpc::InsecureChannelCredentials());
  if (o.cert_file.empty() != o.key_file.empty())
    return MakeError(ErrorCode::kInvalidValue, "--cert-file and --key-file go together");
  grpc::SslCredentialsOptions ssl;
  if (!o.ca_file.empty()) {
    auto ca = ReadPem("--ca-file", o.ca_file);
    if (!ca.ok()) return ca.take_error();
    ssl.pem_root_certs = std::move(ca).value();
  }
  if (!o.cert_file.empty()) {
    auto cert = ReadPem("--cert-file", o.cert_file);
    if (!cert.ok()) return cert.take_error();
    auto key = ReadPem("--key-file", o.key_file);
    if (!key.ok()) return key.take_error();
    ssl.pem_cert_chain = std::move(cert).value();
    ssl.pem_private_key = std::move(key).value();
  }
  grpc::ChannelArguments args;
  if (!o.server_name.empty()) args.SetSslTargetNameOverride(o.server_name);
  return grpc::CreateCustomChannel(o.addr, grpc::SslCredentials(ssl), args);
}

Session::Session(GlobalOptions options, std::shared_ptr<grpc::Channel> channel)
    : options_(std::move(options)),
      channel_(std::move(channel)),
      admin_(admin_api::Admin::NewStub(channel_)),
      query_(query_api::Query::NewStub(channel_)) {}

int UsageError(std::string_view message) {
  fmt::print(stderr, "mqttspecctl: {}\n", OneLine(std::string(message)));
  return kExitUsage;
}

int Session::Connect() {
  if (!connected_) {
    auto wait = std::min<std::chrono::duration<double>>(
        kConnectTimeout, std::chrono::duration<double>(options_.timeout_s));
    connected_ = channel_->WaitForConnected(After(wait)) ? kExitOk : Unreachable();
  }
  return *connected_;
}

void Session::PrepareContext(grpc::ClientContext& ctx, bool deadline) const {
  if (!options_.token.empty()) ctx.AddMetadata("authorization", "Bearer " + options_.token);
  ctx.AddMetadata("mqttspec-client", "mqttspecctl");
  if (deadline) ctx.set_deadline(After(std::chrono::duration<double>(options_.timeout_s)));
}

int Session::Report(const CallResult& result) const {
  const grpc::Status& status = result.status;
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE && result.protocol_code.empty() &&
      status.error_message().find("failed to connect") != std::string::npos) {
    return Unreachable();
  }
  std::string code =
      result.protocol_code.empty() ? StatusName(status.error_code()) : result.protocol_code;
  std::string message = OneLine(status.error_message());
  if (message.empty()) {
    fmt::print(stderr, "error: {}\n", code);
  } else {
    fmt::print(stderr, "error: {}: {}\n", code, message);
  }
  return kExitError;
}

std::string Session::ProtocolCode(const grpc::ClientContext& ctx) {
  const auto& trailers = ctx.GetServerTrailingMetadata();
  auto it = trailers.find("mqttspec-error-code");
  return it == trailers.end() ? "" : std::string(it->second.data(), it->second.size());
}

int Session::Unreachable() const {
  fmt::print(stderr, "mqttspecctl: cannot reach mqttspecd at {}\n", options_.addr);
  return kExitUnreachable;
}

}  // namespace mqttspec::ctl
