#pragma once
// Start-up checks of broker.tls's PEM files, so that a wrong path, an unreadable file, a file that
// is not PEM, or a key that does not belong to its certificate stops mqttspecd with exit code 2
// and a message naming the key — instead of a broker that starts without its TLS listener, or a
// service that retries a handshake that can never succeed. Uses OpenSSL's PEM readers.

#include "common/error.h"
#include "server/config.h"

namespace mqttspec::server {

// Checks the files that broker.tls names (embedded: the listener's cert_file, key_file, ca_file;
// external: the service's connection's) and those of admin.tls (the gRPC server's). OK for a
// section that is not set.
Status CheckTlsFiles(const Config& config);

}  // namespace mqttspec::server
