#include "server/embedded/mosquitto_transport.h"

// clang-format off
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mqtt_protocol.h>
// clang-format on
#include <spdlog/spdlog.h>
#include <dirent.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <string>

namespace mqttspec::server {
namespace {

// What the eventfd's epoll data points at: the broker reads an identity field at the start of
// its context structs, and 0 there means "not one of mine".
alignas(64) const unsigned char kZeroIdentity[64] = {};

// Whether `fd` is a listening TCP socket on one of `ports`.
bool IsListenerOn(int fd, const std::vector<int>& ports) {
  int listening = 0;
  socklen_t len = sizeof listening;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) return false;
  sockaddr_storage addr{};
  len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return false;
  int port = -1;
  if (addr.ss_family == AF_INET) port = ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6) port = ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return std::find(ports.begin(), ports.end(), port) != ports.end();
}

// Whether the epoll set `epfd` watches a listener on one of `ports` (its /proc fdinfo lists the
// watched descriptors as "tfd: <fd> …" lines).
bool WatchesListener(int epfd, const std::vector<int>& ports) {
  std::ifstream info("/proc/self/fdinfo/" + std::to_string(epfd));
  std::string word;
  while (info >> word) {
    if (word != "tfd:") continue;
    int fd = -1;
    if (info >> fd && IsListenerOn(fd, ports)) return true;
  }
  return false;
}

// The broker's epoll set: the one that watches its MQTT listeners. gRPC (admin.listen) and others
// in the process have epoll sets of their own, so "the only one" is not enough. Without
// listener ports to go by (none configured), only a process with a single epoll set will do.
int FindBrokerEpollFd(const std::vector<int>& ports) {
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return -1;
  std::vector<int> epolls;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    char link[64];
    std::string path = std::string("/proc/self/fd/") + e->d_name;
    ssize_t n = readlink(path.c_str(), link, sizeof link - 1);
    if (n <= 0) continue;
    link[n] = '\0';
    if (std::strcmp(link, "anon_inode:[eventpoll]") == 0) epolls.push_back(std::atoi(e->d_name));
  }
  closedir(dir);
  if (!ports.empty()) {
    std::vector<int> brokers;
    for (int fd : epolls)
      if (WatchesListener(fd, ports)) brokers.push_back(fd);
    if (brokers.size() == 1) return brokers[0];
  }
  return epolls.size() == 1 ? epolls[0] : -1;  // more than one: we cannot tell
}

}  // namespace

MosquittoTransport::MosquittoTransport() = default;

MosquittoTransport::~MosquittoTransport() {
  if (event_fd_ >= 0) {
    if (epoll_fd_ >= 0) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, event_fd_, nullptr);
    close(event_fd_);
  }
}

bool MosquittoTransport::InstallWake(const std::vector<int>& listener_ports) {
  if (wake_installed()) return true;
  int epfd = FindBrokerEpollFd(listener_ports);
  if (epfd < 0) return false;
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) return false;
  epoll_event ev{};
  ev.events = EPOLLIN;  // level-triggered: stays ready until Drain reads it
  ev.data.ptr = const_cast<unsigned char*>(kZeroIdentity);
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev) != 0) {
    close(efd);
    return false;
  }
  epoll_fd_ = epfd;
  event_fd_ = efd;
  return true;
}

void MosquittoTransport::Publish(OutboundMessage message) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(message));
  }
  Wake();
}

bool MosquittoTransport::Kick(const std::string& client_id) {
  {
    std::lock_guard lock(mu_);
    kicks_.push_back(client_id);
  }
  Wake();
  return true;
}

void MosquittoTransport::Wake() {
  if (event_fd_ >= 0 && !wake_pending_.exchange(true, std::memory_order_acq_rel)) {
    uint64_t one = 1;
    ssize_t n = write(event_fd_, &one, sizeof one);
    (void)n;  // EAGAIN means the counter is already non-zero: the broker wakes anyway
  }
}

size_t MosquittoTransport::Drain() {
  if (event_fd_ >= 0) {
    // Clear the wake before taking the queue: anything queued after this point wakes again.
    wake_pending_.store(false, std::memory_order_release);
    uint64_t value;
    ssize_t n = read(event_fd_, &value, sizeof value);
    (void)n;
  }
  draining_.clear();
  std::vector<std::string> kicks;
  {
    std::lock_guard lock(mu_);
    draining_.swap(queue_);
    kicks.swap(kicks_);
  }
  for (const std::string& id : kicks) {
    // Without the will: an operator's kick is not the client failing.
    if (mosquitto_kick_client_by_clientid(id.c_str(), false) != MOSQ_ERR_SUCCESS)
      spdlog::info("kick: client '{}' was no longer connected", id);
    else
      spdlog::info("kick: disconnected client '{}' (admin API)", id);
  }
  for (OutboundMessage& m : draining_) {
    // The broker frees the payload with its own allocator: it must come from mosquitto_malloc
    // (never mosquitto_broker_publish_copy, MOSQUITTO.md §4).
    void* payload = mosquitto_malloc(m.payload.size() ? m.payload.size() : 1);
    if (!payload) {
      failed_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    std::memcpy(payload, m.payload.data(), m.payload.size());
    mosquitto_property* props = nullptr;
    if (!m.correlation_data.empty()) {
      mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, m.correlation_data.data(),
                                    static_cast<uint16_t>(m.correlation_data.size()));
    }
    // Routed like any client's PUBLISH (client id NULL): it reaches the subscribers whose READ
    // access check passes (acl.h: only the owner of the topic's tree), queued for offline
    // persistent sessions within the broker's max_queued_messages. Never addressed to a client
    // id: that path (single_publish in 2.0.11's loop.c) leaks every message the broker then
    // drops for a full queue (MOSQUITTO.md §5).
    int rc = mosquitto_broker_publish(nullptr, m.topic.c_str(), static_cast<int>(m.payload.size()),
                                      payload, m.qos, false, props);
    if (rc == MOSQ_ERR_SUCCESS) {
      published_.fetch_add(1, std::memory_order_relaxed);
    } else {
      mosquitto_free(payload);  // still ours on failure
      failed_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  size_t n = draining_.size();
  draining_.clear();
  return n;
}

}  // namespace mqttspec::server
