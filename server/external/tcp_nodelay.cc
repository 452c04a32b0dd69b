// Paho C 1.3.12 never sets TCP_NODELAY, which costs ~44 ms per QoS 1 round trip (Nagle's
// algorithm meets delayed ACKs; paho.mqtt.c issue #530). This definition of connect() in the
// mqttspecd executable interposes libc's for every library in the process: it calls the real
// connect() and then sets TCP_NODELAY on TCP sockets. It must live in the executable itself
// (exported with --export-dynamic-symbol=connect); interposition from a shared library loaded
// into another program would not work. See ../shared/design/MOSQUITTO.md §8.

#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>

namespace {
using ConnectFn = int (*)(int, const struct sockaddr*, socklen_t);
std::atomic<ConnectFn> real_connect{nullptr};
}  // namespace

extern "C" int connect(int fd, const struct sockaddr* addr, socklen_t len) {
  ConnectFn fn = real_connect.load(std::memory_order_acquire);
  if (!fn) {
    fn = reinterpret_cast<ConnectFn>(dlsym(RTLD_NEXT, "connect"));
    real_connect.store(fn, std::memory_order_release);
  }
  int rc = fn(fd, addr, len);
  if (addr && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6)) {
    int saved = errno;  // callers read errno (EINPROGRESS) after a non-blocking connect
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // fails harmlessly on UDP
    errno = saved;
  }
  return rc;
}
