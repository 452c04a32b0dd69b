#pragma once
// PahoTransport: external broker mode. The service is an MQTT 5 client (Paho MQTT C++) of any
// broker: it subscribes to the request filter (through $share/<group>/… when a shared group is
// configured), hands each request to the Service and publishes the answers.
//
// Connection (broker.* keys): MQTT 5, TLS for ssl:// URLs (broker.tls), keep-alive and connect
// timeout as configured, and by default a persistent session (broker.clean_session false), so
// the broker queues the requests that arrive while the service is away. Every attempt that
// fails — at start-up or after a loss — is logged and retried after ReconnectDelay (backoff.h:
// exponential, full jitter, within broker.reconnect); after every connect the subscription is
// made again.
//
// Flow control: QoS 1/2 publishes are kept within the broker's Receive Maximum (from CONNACK;
// Mosquitto's default is 20). Paho C 1.3.12 handles a full in-flight window by sleeping its send
// thread for up to a second (fixed upstream in paho.mqtt.c #1457, later than Debian's version):
// 400 QoS 1 answers took 5–14 s. So this class never lets Paho's window fill: answers beyond the
// window wait in a bounded queue and are sent as PUBACKs come back; when the queue is full,
// Publish blocks (back-pressure on the workers) instead of dropping.
// Thread-safety: Publish may be called from any thread.

#include <mqtt/iaction_listener.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/config.h"
#include "server/transport.h"

namespace mqtt {
class async_client;
class connect_options;
}  // namespace mqtt

namespace mqttspec::server {

class MqttFront;

class PahoTransport : public Transport, private mqtt::iaction_listener {
 public:
  PahoTransport(const BrokerConfig& broker, int request_qos);
  ~PahoTransport() override;

  // Starts connecting in the background and hands requests to `front` once subscribed.
  void Start(MqttFront& front);

  // Stops taking new requests, keeps publishing the answers of those taken. With a persistent
  // session (broker.clean_session false) the session is handed back to the broker: a second,
  // clean connection (<client_id>-drain-<hex>) takes over publishing, then the session's
  // connection closes *without* unsubscribing, so requests published from then on queue at the
  // broker until the service is back (none lost, none taken and dropped). With a clean session,
  // or when the second connection cannot be made, it unsubscribes (requests published while the
  // service is away are not kept).
  void StopTaking();

  // Waits until every answer is acknowledged by the broker (up to `timeout`), then disconnects.
  void Stop(std::chrono::milliseconds timeout);

  void Publish(OutboundMessage message) override;
  bool connected() const override;

  uint64_t publish_failures() const { return publish_failures_.load(); }
  uint64_t taken() const override;
  uint64_t settled() const override;

 private:
  static constexpr size_t kMaxQueued = 100000;  // answers waiting for the window

  // `drain`: the connection of a graceful stop (clean start, no session kept).
  void ConfigureConnect(mqtt::connect_options& opts, bool drain = false) const;
  // The graceful stop's hand-over (StopTaking); false when the drain connection failed.
  bool HandOver();
  // Connector thread: connects whenever need_connect_, until stopping_.
  void ConnectLoop();
  void Subscribe();
  void OnConnected();
  // Sends one message; `generation` identifies the connection its acknowledgement belongs to.
  void Send(OutboundMessage message, uint64_t generation);
  // A QoS 1/2 publish of `generation` finished (acknowledged or failed): refill the window.
  void Done(uint64_t generation);
  // REQUIRES mu_ held: takes queued answers while the window has room (counted in flight).
  std::vector<OutboundMessage> FillWindow();
  // REQUIRES mu_ held: a new connection; what was in flight on the old one is beyond tracking.
  void NewGeneration();
  void on_success(const mqtt::token& token) override;
  void on_failure(const mqtt::token& token) override;

  BrokerConfig broker_;
  int request_qos_;
  std::vector<std::string> filters_;  // MqttFront::filters(), $share'd with a shared_group
  MqttFront* front_ = nullptr;
  std::unique_ptr<mqtt::async_client> client_;
  std::unique_ptr<mqtt::async_client> drain_;  // set once by HandOver, before publisher_ moves
  std::atomic<mqtt::async_client*> publisher_{nullptr};  // client_, or drain_ after a hand-over
  std::thread connector_;
  std::atomic<uint64_t> publish_failures_{0};

  mutable std::mutex mu_;       // guards everything below
  std::condition_variable cv_;  // queue space, idle, stopping
  bool stopping_ = false;
  bool taking_ = true;
  bool need_connect_ = true;  // not connected: set at start and by the connection-lost handler
  bool paused_ = false;       // HandOver: answers queue while the session's connection closes
  std::deque<OutboundMessage> queued_;
  int inflight_ = 0;
  int window_ = 20;
  uint64_t generation_ = 1;  // bumped on every (re)connect
  uint64_t taken_ = 0;       // messages Publish took
  uint64_t settled_ = 0;     // of them: acknowledged, refused, QoS 0, or lost with a connection
};

}  // namespace mqttspec::server
