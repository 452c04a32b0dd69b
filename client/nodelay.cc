#include "client/nodelay.h"

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstdlib>

namespace mqttspec::client {

int PortOfUri(const std::string& uri) {
  const size_t scheme_end = uri.find("://");
  const std::string scheme = scheme_end == std::string::npos ? "tcp" : uri.substr(0, scheme_end);
  const size_t host_start = scheme_end == std::string::npos ? 0 : scheme_end + 3;
  const size_t path = uri.find('/', host_start);
  const std::string hostport =
      uri.substr(host_start, path == std::string::npos ? std::string::npos : path - host_start);
  const size_t colon = hostport.rfind(':');
  const size_t bracket = hostport.rfind(']');  // [::1]:1883
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
    const int p = std::atoi(hostport.c_str() + colon + 1);
    if (p > 0 && p < 65536) return p;
  }
  if (scheme == "ssl" || scheme == "mqtts") return 8883;
  if (scheme == "ws") return 80;
  if (scheme == "wss") return 443;
  return 1883;
}

int SetNoDelayOnPeerPort(int port) {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return 0;
  int n = 0;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == dirfd(d)) continue;
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
        type != SOCK_STREAM)
      continue;
    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    if (getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&peer), &plen) != 0) continue;
    int peer_port = -1;
    if (peer.ss_family == AF_INET)
      peer_port = ntohs(reinterpret_cast<sockaddr_in*>(&peer)->sin_port);
    else if (peer.ss_family == AF_INET6)
      peer_port = ntohs(reinterpret_cast<sockaddr_in6*>(&peer)->sin6_port);
    if (peer_port != port) continue;
    int one = 1;
    if (setsockopt(static_cast<int>(fd), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0) ++n;
  }
  closedir(d);
  return n;
}

}  // namespace mqttspec::client
