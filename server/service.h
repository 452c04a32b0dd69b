#pragma once
// Service: the core that every transport drives. It owns nothing broker-specific: given a request
// PUBLISH it checks the topic and the client's rate, queues the request on the client's strand of
// the worker pool, runs it through the Router and publishes the response.
// Thread-safety: OnMessage may be called from any thread (typically the transport's).

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "server/client_executor.h"
#include "server/config.h"
#include "server/router.h"
#include "server/transport.h"

namespace mqttspec::server {

class Service {
 public:
  Service(const Config& config, Router& router, Publisher& publisher);
  ~Service();

  // Takes one PUBLISH from a request topic. Returns quickly; the answer is published later from
  // a worker thread. Messages on malformed topics are dropped and counted.
  void OnMessage(InboundMessage message);

  // Blocks until every request taken so far has been answered.
  void Drain();

  // The topic filter a transport subscribes to: "<prefix>/+/request".
  std::string RequestFilter() const { return prefix_ + "/+/request"; }

  // The client id of a request topic "<prefix>/<client>/request", or nullopt when the topic has
  // another shape or the id is not 1–128 characters free of '/', '+', '#' and NUL.
  std::optional<std::string_view> ClientOfTopic(std::string_view topic) const;

  struct Stats {
    uint64_t taken = 0, answered = 0, dropped_topics = 0, rate_limited = 0;
  };
  Stats stats() const;

 private:
  bool Admit(const std::string& client);  // token bucket per client

  std::string prefix_;
  int response_qos_;
  double rate_per_s_;
  Router& router_;
  Publisher& publisher_;

  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point last;
  };
  std::mutex buckets_mu_;  // guards buckets_
  std::unordered_map<std::string, Bucket> buckets_;

  std::atomic<uint64_t> taken_{0}, answered_{0}, dropped_topics_{0}, rate_limited_{0};
  std::unique_ptr<ClientExecutor> executor_;  // last: its threads stop first
};

}  // namespace mqttspec::server
