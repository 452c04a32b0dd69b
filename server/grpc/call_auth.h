#pragma once
// The admin.token check every gRPC call of both services passes: `authorization: Bearer <token>`
// in the call metadata, compared in constant time.
// Thread-safety: pure functions.

#include <grpcpp/grpcpp.h>

#include <string>

namespace mqttspec::server {

// A metadata value of the call, or "".
std::string CallMetadata(const grpc::ServerContextBase& ctx, const char* key);

// OK when `token` is "" (none configured) or the call carries it; else UNAUTHENTICATED.
grpc::Status CheckBearer(const grpc::ServerContextBase& ctx, const std::string& token);

// The admin API's check: the token when one is set; without one, only local callers (loopback or
// a unix socket) are answered, so an admin.listen on a public address never opens it to all.
grpc::Status CheckAdmin(const grpc::ServerContextBase& ctx, const std::string& token);

}  // namespace mqttspec::server
