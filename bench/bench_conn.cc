// The MQTT connections of mqttspec_bench: see bench_conn.h.

#include "bench_conn.h"

#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

namespace bench {
namespace {

void OnConnect(mosquitto* m, void* ud, int rc) {
  auto* c = static_cast<Conn*>(ud);
  if (rc != 0)
    Die("%s: connection refused (%s)", c->client_id.c_str(), mosquitto_connack_string(rc));
  c->connected = true;
  int r = mosquitto_subscribe(m, nullptr, c->subscribe_filter.c_str(), c->qos);
  if (r != MOSQ_ERR_SUCCESS) Die("subscribe: %s", mosquitto_strerror(r));
}

void OnSubscribe(mosquitto*, void* ud, int, int count, const int* granted) {
  auto* c = static_cast<Conn*>(ud);
  if (count < 1 || granted[0] > 2)
    Die("%s: subscription to %s refused", c->client_id.c_str(), c->subscribe_filter.c_str());
  c->subscribed = true;
}

void OnMessage(mosquitto*, void* ud, const mosquitto_message* msg) {
  auto* c = static_cast<Conn*>(ud);
  if (c->handler) c->handler(*c, *msg);
}

void OnDisconnect(mosquitto*, void* ud, int rc) {
  auto* c = static_cast<Conn*>(ud);
  c->connected = false;
  if (rc != 0)
    Die("%s: lost the connection to the broker (%s)", c->client_id.c_str(), mosquitto_strerror(rc));
}

}  // namespace

void Connect(Conn& c, const std::string& host, int port) {
  c.m = mosquitto_new(c.client_id.c_str(), true, &c);
  if (!c.m) Die("mosquitto_new failed");
  mosquitto_int_option(c.m, MOSQ_OPT_TCP_NODELAY, 1);
  mosquitto_connect_callback_set(c.m, OnConnect);
  mosquitto_subscribe_callback_set(c.m, OnSubscribe);
  mosquitto_message_callback_set(c.m, OnMessage);
  mosquitto_disconnect_callback_set(c.m, OnDisconnect);
  int rc = mosquitto_connect(c.m, host.c_str(), port, 60);
  if (rc != MOSQ_ERR_SUCCESS)
    Die("cannot connect to %s:%d: %s", host.c_str(), port, mosquitto_strerror(rc));
}

void Loop::Pump(int timeout_ms) {
  for (size_t i = 0; i < conns_.size(); ++i) {
    fds_[i].fd = mosquitto_socket(conns_[i].m);
    fds_[i].events = POLLIN | (mosquitto_want_write(conns_[i].m) ? POLLOUT : 0);
    fds_[i].revents = 0;
  }
  int n = poll(fds_.data(), fds_.size(), timeout_ms);
  if (n < 0 && errno != EINTR) Die("poll: %s", std::strerror(errno));
  for (size_t i = 0; n > 0 && i < conns_.size(); ++i) {
    mosquitto* m = conns_[i].m;
    if (fds_[i].revents & (POLLIN | POLLERR | POLLHUP)) {
      for (int k = 0; k < 256; ++k) {  // every packet already received, then back to poll
        int rc = mosquitto_loop_read(m, 1);
        if (rc != MOSQ_ERR_SUCCESS)
          Die("%s: read: %s", conns_[i].client_id.c_str(), mosquitto_strerror(rc));
        int pending = 0;
        if (ioctl(mosquitto_socket(m), FIONREAD, &pending) != 0 || pending <= 0) break;
      }
    }
    if (mosquitto_want_write(m)) {
      int rc = mosquitto_loop_write(m, 1);
      if (rc != MOSQ_ERR_SUCCESS)
        Die("%s: write: %s", conns_[i].client_id.c_str(), mosquitto_strerror(rc));
    }
  }
  int64_t now = NowNs();
  if (now - last_misc_ > 1'000'000'000) {
    last_misc_ = now;
    for (auto& c : conns_) mosquitto_loop_misc(c.m);
  }
}

void Loop::Flush() {
  for (auto& c : conns_) {
    if (mosquitto_want_write(c.m)) {
      int rc = mosquitto_loop_write(c.m, 1);
      if (rc != MOSQ_ERR_SUCCESS) Die("%s: write: %s", c.client_id.c_str(), mosquitto_strerror(rc));
    }
  }
}

}  // namespace bench
