#pragma once
// PahoTransport: external broker mode. The service is an MQTT 5 client (Paho MQTT C++) of any
// broker: it subscribes to the request filter (through $share/<group>/… when a shared group is
// configured), hands each request to the Service and publishes the answers.
// Connection: retried with exponential backoff (1 s doubling to 30 s) until the broker answers,
// including at start-up; after every (re)connect the subscription is made again.
// Thread-safety: Publish may be called from any thread.

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "server/config.h"
#include "server/transport.h"

namespace mqtt {
class async_client;
}

namespace mqttspec::server {

class Service;

class PahoTransport : public Publisher {
 public:
  PahoTransport(const BrokerConfig& broker, int request_qos);
  ~PahoTransport() override;

  // Starts connecting in the background and delivers requests to `service` once subscribed.
  void Start(Service& service);

  // Stops taking new requests (unsubscribes), keeps publishing.
  void StopTaking();

  // Waits for outstanding publishes (up to `timeout`), then disconnects.
  void Stop(std::chrono::milliseconds timeout);

  void Publish(OutboundMessage message) override;

  bool connected() const;
  uint64_t publish_failures() const { return publish_failures_.load(); }

 private:
  void ConnectLoop();
  void Subscribe();

  BrokerConfig broker_;
  int request_qos_;
  std::string filter_;
  Service* service_ = nullptr;
  std::unique_ptr<mqtt::async_client> client_;

  std::mutex mu_;  // guards stopping_, taking_ and wakes ConnectLoop
  std::condition_variable cv_;
  bool stopping_ = false;
  bool taking_ = true;
  std::thread connector_;
  std::atomic<uint64_t> publish_failures_{0};
};

}  // namespace mqttspec::server
