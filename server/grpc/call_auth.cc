#include "server/grpc/call_auth.h"

namespace mqttspec::server {

namespace {

// Compares without stopping at the first difference, so the time taken says nothing of the token.
bool SameSecret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i % (b.empty() ? 1 : b.size())];
  return diff == 0 && !b.empty();
}

}  // namespace

std::string CallMetadata(const grpc::ServerContextBase& ctx, const char* key) {
  auto it = ctx.client_metadata().find(key);
  return it == ctx.client_metadata().end() ? std::string()
                                           : std::string(it->second.data(), it->second.size());
}

grpc::Status CheckBearer(const grpc::ServerContextBase& ctx, const std::string& token) {
  if (token.empty()) return grpc::Status::OK;
  if (!SameSecret(CallMetadata(ctx, "authorization"), "Bearer " + token))
    return {grpc::StatusCode::UNAUTHENTICATED, "a valid authorization: Bearer <token> is needed"};
  return grpc::Status::OK;
}

grpc::Status CheckAdmin(const grpc::ServerContextBase& ctx, const std::string& token) {
  if (!token.empty()) return CheckBearer(ctx, token);
  const std::string peer = ctx.peer();  // "ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", "unix:…"
  if (peer.rfind("ipv4:127.", 0) == 0 || peer.rfind("ipv6:[::1]", 0) == 0 ||
      peer.rfind("ipv6:[::ffff:127.", 0) == 0 || peer.rfind("unix:", 0) == 0)
    return grpc::Status::OK;
  return {grpc::StatusCode::UNAUTHENTICATED,
          "admin.token is not set: the admin API answers only local callers"};
}

}  // namespace mqttspec::server
