#pragma once
// MqttFront: the MQTT request/response binding, shared by both transports. It turns a PUBLISH on
// <prefix>/<client>/request into a Service::Submit for that client — and a device's twin report
// or get (<prefix>/<device>/twin/…, topics.h) into a Service::SubmitTwin — (the topic names the
// caller; the broker has checked that only the client itself may publish there), and publishes the
// answer through the Transport on <prefix>/<client>/response — or on the client's MQTT 5 Response
// Topic when that lies in its own tree — with its Correlation Data echoed, at qos.response.
// Thread-safety: OnMessage from any thread (the broker's or Paho's).

#include <atomic>
#include <string>
#include <string_view>
#include <vector>

#include "server/config.h"
#include "server/service.h"
#include "server/transport.h"

namespace mqttspec::server {

class MqttFront {
 public:
  MqttFront(const Config& config, Service& service, Transport& transport);

  // One PUBLISH from a request topic. Returns at once; the answer is published from a worker.
  // Messages on other topic shapes, or with an invalid or reserved ("grpc:…") client id, are
  // dropped and counted.
  void OnMessage(InboundMessage message);

  // Whether OnMessage takes a message on `topic`: a request, or (twin.enabled) a device's twin
  // report or get (topics.h). The embedded plugin's cheap test of every PUBLISH.
  bool Takes(std::string_view topic) const;

  // The filter a transport subscribes to: "<prefix>/+/request".
  const std::string& request_filter() const { return request_filter_; }
  // Every filter an external transport subscribes to: the requests', and with twin.enabled the
  // twin reports' and gets' ("<prefix>/+/twin/reports/+", "<prefix>/+/twin/get").
  std::vector<std::string> filters() const;
  const std::string& prefix() const { return prefix_; }
  uint64_t dropped_topics() const { return dropped_topics_.load(); }

 private:
  const std::string prefix_;
  const std::string request_filter_;
  const int response_qos_;
  const bool twin_;
  Service& service_;
  Transport& transport_;
  std::atomic<uint64_t> dropped_topics_{0};
};

}  // namespace mqttspec::server
