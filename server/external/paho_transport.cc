#include "server/external/paho_transport.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <mqtt/async_client.h>
#include <spdlog/spdlog.h>

#include <random>
#include <vector>

#include "server/external/backoff.h"
#include "server/mqtt_front.h"

namespace mqttspec::server {

namespace {
constexpr int kMaxInflight = 1000;  // our own cap, whatever the broker allows
}

PahoTransport::PahoTransport(const BrokerConfig& broker, int request_qos)
    : broker_(broker), request_qos_(request_qos) {
  mqtt::create_options opts(MQTTVERSION_5);
  opts.set_max_buffered_messages(kMaxInflight * 2);
  opts.set_send_while_disconnected(true, true);
  client_ = std::make_unique<mqtt::async_client>(broker_.url, broker_.client_id, opts, nullptr);
  publisher_.store(client_.get());
}

PahoTransport::~PahoTransport() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (connector_.joinable()) connector_.join();
}

void PahoTransport::Start(MqttFront& front) {
  front_ = &front;
  filters_ = front.filters();  // requests (and twin messages)
  if (!broker_.shared_group.empty())
    for (std::string& f : filters_) f = "$share/" + broker_.shared_group + "/" + f;

  client_->set_message_callback([this](mqtt::const_message_ptr msg) {
    InboundMessage in;
    in.topic = msg->get_topic();
    in.payload = msg->get_payload_str();
    mqtt::properties props = msg->get_properties();  // get() wants a non-const copy
    if (props.contains(mqtt::property::RESPONSE_TOPIC))
      in.response_topic = mqtt::get<std::string>(props, mqtt::property::RESPONSE_TOPIC);
    if (props.contains(mqtt::property::CORRELATION_DATA))
      in.correlation_data = mqtt::get<mqtt::binary>(props, mqtt::property::CORRELATION_DATA);
    front_->OnMessage(std::move(in));
  });
  client_->set_connected_handler([this](const std::string&) { OnConnected(); });
  client_->set_connection_lost_handler([this](const std::string& cause) {
    spdlog::warn("lost the broker connection ({}); reconnecting",
                 cause.empty() ? "no reason" : cause);
    {
      std::lock_guard lock(mu_);
      need_connect_ = true;
    }
    cv_.notify_all();
  });
  connector_ = std::thread([this] { ConnectLoop(); });
}

void PahoTransport::OnConnected() {
  Subscribe();
  // Acknowledgements of the previous connection will not come: start a new window and send
  // what waited.
  std::vector<OutboundMessage> batch;
  uint64_t gen;
  int window;
  {
    std::lock_guard lock(mu_);  // window_ is ConnectLoop's too (TSan found this read unlocked)
    NewGeneration();
    gen = generation_;
    window = window_;
    batch = FillWindow();
  }
  spdlog::info("connected to broker {} (in-flight window {})", broker_.url, window);
  cv_.notify_all();
  for (auto& m : batch) Send(std::move(m), gen);
}

void PahoTransport::Subscribe() {
  {
    std::lock_guard lock(mu_);
    if (!taking_) return;
  }
  try {
    client_->subscribe(mqtt::string_collection::create(filters_),
                       mqtt::iasync_client::qos_collection(filters_.size(), request_qos_));
    spdlog::info("taking requests on {}", fmt::join(filters_, ", "));
  } catch (const mqtt::exception& e) {
    spdlog::error("subscribe to {} failed: {}", fmt::join(filters_, ", "), e.what());
  }
}

void PahoTransport::ConfigureConnect(mqtt::connect_options& opts, bool drain) const {
  // Set in place, never copied out: Paho C++ 1.2.0's copy and move constructors leave the C
  // struct's connectProperties pointing at the source object's properties (found as a session
  // expiry that never reached the broker).
  opts.set_mqtt_version(MQTTVERSION_5);
  opts.set_clean_start(drain || broker_.clean_session);
  opts.set_keep_alive_interval(std::chrono::seconds(broker_.keepalive_s));
  opts.set_connect_timeout(std::chrono::seconds(broker_.connect_timeout_s));
  opts.set_automatic_reconnect(false);  // ConnectLoop reconnects, with jitter
  opts.set_max_inflight(kMaxInflight);
  if (!broker_.clean_session && !drain) {
    // A persistent session: the broker keeps the subscription and queues the requests that
    // arrive while the service is away, for session_expiry_s.
    mqtt::properties props;
    props.add(mqtt::property(mqtt::property::SESSION_EXPIRY_INTERVAL,
                             static_cast<uint32_t>(broker_.session_expiry_s)));
    opts.set_properties(std::move(props));
  }
  if (!broker_.username.empty()) opts.set_user_name(broker_.username);
  if (!broker_.password.empty()) opts.set_password(broker_.password);
  const std::string& url = broker_.url;
  if (url.rfind("ssl://", 0) == 0 || url.rfind("mqtts://", 0) == 0 || url.rfind("wss://", 0) == 0) {
    const TlsConfig& t = broker_.tls;
    mqtt::ssl_options ssl;
    if (!t.ca_file.empty()) ssl.set_trust_store(t.ca_file);  // else the system's CAs
    if (!t.cert_file.empty()) {
      ssl.set_key_store(t.cert_file);
      ssl.set_private_key(t.key_file);
    }
    ssl.set_enable_server_cert_auth(t.verify);
    ssl.set_verify(t.verify);  // and the host name
    // No set_error_handler: Paho C++ 1.2.0 points the C callback's context at the ssl_options
    // object itself, which dangles once the options are copied (crashed at the second attempt).
    opts.set_ssl(std::move(ssl));
  }
}

void PahoTransport::ConnectLoop() {
  mqtt::connect_options opts;
  ConfigureConnect(opts);
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  int failures = 0;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || need_connect_; });
      if (stopping_) return;
    }
    try {
      auto token = client_->connect(opts);
      token->wait();
      // The broker's Receive Maximum bounds our QoS 1/2 in-flight window (65535 when absent).
      const auto& response = token->get_connect_response();
      mqtt::properties props = response.get_properties();
      int window = kMaxInflight;
      if (props.contains(mqtt::property::RECEIVE_MAXIMUM))
        window = std::min<int>(window, mqtt::get<uint16_t>(props, mqtt::property::RECEIVE_MAXIMUM));
      {
        std::lock_guard lock(mu_);
        window_ = std::max(1, window);
        need_connect_ = false;
      }
      spdlog::info(
          "connected to broker {} after {} failed attempt(s); session {}; {} QoS 1/2 "
          "messages in flight allowed",
          broker_.url, failures, response.is_session_present() ? "resumed" : "new", window);
      failures = 0;
      continue;  // wait for the next loss
    } catch (const mqtt::exception& e) {
      ++failures;
      const double delay = ReconnectDelay(broker_.reconnect, failures, unit(rng));
      spdlog::warn("connecting to broker {} failed (attempt {}): {}; next attempt in {:.2f} s",
                   broker_.url, failures, e.what(), delay);
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, std::chrono::duration<double>(delay), [&] { return stopping_; }))
        return;
    }
  }
}

void PahoTransport::StopTaking() {
  {
    std::lock_guard lock(mu_);
    taking_ = false;
  }
  if (!client_->is_connected()) return;
  if (!broker_.clean_session && HandOver()) return;
  try {
    client_->unsubscribe(mqtt::string_collection::create(filters_))
        ->wait_for(std::chrono::seconds(2));
  } catch (const mqtt::exception& e) {
    spdlog::warn("unsubscribe failed: {}", e.what());
  }
}

bool PahoTransport::HandOver() {
  // 1. A clean second connection for the answers still to come (same credentials, so the
  //    broker's ACL lets it publish answers as the service).
  std::mt19937_64 rng(std::random_device{}());
  const std::string id = fmt::format("{}-drain-{:08x}", broker_.client_id,
                                     static_cast<uint32_t>(rng()));
  mqtt::create_options co(MQTTVERSION_5);
  auto drain = std::make_unique<mqtt::async_client>(broker_.url, id, co, nullptr);
  int window = kMaxInflight;
  try {
    mqtt::connect_options opts;
    ConfigureConnect(opts, /*drain=*/true);
    auto token = drain->connect(opts);
    if (!token->wait_for(std::chrono::seconds(broker_.connect_timeout_s)))
      throw mqtt::exception(MQTTASYNC_FAILURE, "timed out");
    mqtt::properties props = token->get_connect_response().get_properties();
    if (props.contains(mqtt::property::RECEIVE_MAXIMUM))
      window = std::min<int>(window, mqtt::get<uint16_t>(props, mqtt::property::RECEIVE_MAXIMUM));
  } catch (const mqtt::exception& e) {
    spdlog::warn("graceful stop: no second connection ({}); unsubscribing instead — requests "
                 "published while the service is away are lost",
                 e.what());
    return false;
  }
  // 2. Answers queue from now on; what the session's connection has in flight is acknowledged
  //    before it closes (Paho fails, rather than waits for, what is in flight at a disconnect).
  {
    std::unique_lock lock(mu_);
    paused_ = true;
    if (!cv_.wait_for(lock, std::chrono::seconds(5), [&] { return inflight_ == 0; }))
      spdlog::warn("graceful stop: {} answers still unacknowledged on the session's connection",
                   inflight_);
  }
  // 3. Close the session's connection without unsubscribing: the broker keeps the session and
  //    queues the requests for it. Requests delivered before the DISCONNECT are still taken.
  try {
    client_->disconnect(5000)->wait_for(std::chrono::seconds(10));
  } catch (const mqtt::exception& e) {
    spdlog::warn("graceful stop: closing the session's connection: {}", e.what());
  }
  // 4. Resume on the drain connection.
  std::vector<OutboundMessage> batch;
  uint64_t gen;
  {
    std::lock_guard lock(mu_);
    drain_ = std::move(drain);
    publisher_.store(drain_.get());
    paused_ = false;
    NewGeneration();
    gen = generation_;
    window_ = std::max(1, window);
    batch = FillWindow();
  }
  cv_.notify_all();
  for (auto& m : batch) Send(std::move(m), gen);
  spdlog::info("graceful stop: the session stays with the broker (requests queue there until the "
               "service is back); the answers of the requests taken leave over {}",
               id);
  return true;
}

void PahoTransport::Stop(std::chrono::milliseconds timeout) {
  {
    std::unique_lock lock(mu_);
    stopping_ = true;
    cv_.notify_all();
    if (!cv_.wait_for(lock, timeout, [&] { return queued_.empty() && inflight_ == 0; })) {
      spdlog::warn("stopping with {} answers unacknowledged by the broker",
                   queued_.size() + static_cast<size_t>(inflight_));
    }
  }
  if (connector_.joinable()) connector_.join();
  for (auto* c : {client_.get(), drain_.get()}) {
    try {
      if (c && c->is_connected()) c->disconnect()->wait_for(std::chrono::seconds(5));
    } catch (const mqtt::exception& e) {
      spdlog::warn("disconnect failed: {}", e.what());
    }
  }
}

bool PahoTransport::connected() const { return client_ && client_->is_connected(); }

void PahoTransport::Publish(OutboundMessage m) {
  uint64_t gen;
  {
    std::unique_lock lock(mu_);
    gen = generation_;
    ++taken_;
    if (m.qos == 0) ++settled_;  // not tracked
    if (m.qos > 0 || paused_) {
      // Back-pressure: a worker waits here rather than growing the queue without bound.
      cv_.wait(lock, [&] { return queued_.size() < kMaxQueued || stopping_; });
      if (paused_ || inflight_ >= window_ || !queued_.empty()) {
        queued_.push_back(std::move(m));
        return;
      }
      ++inflight_;
    }
  }
  Send(std::move(m), gen);
}

void PahoTransport::Send(OutboundMessage m, uint64_t generation) {
  const bool tracked = m.qos > 0;
  try {
    mqtt::properties props;
    if (!m.correlation_data.empty())
      props.add(mqtt::property(mqtt::property::CORRELATION_DATA, m.correlation_data));
    auto msg = mqtt::message_ptr_builder()
                   .topic(m.topic)
                   .payload(std::move(m.payload))
                   .qos(m.qos)
                   .properties(std::move(props))
                   .finalize();
    // The generation rides in the user context, so a late acknowledgement of an earlier
    // connection cannot shrink the current window.
    if (tracked) {
      publisher_.load()->publish(std::move(msg), reinterpret_cast<void*>(generation), *this);
    } else {
      publisher_.load()->publish(std::move(msg));
    }
  } catch (const mqtt::exception& e) {
    publish_failures_.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("publish to {} failed: {}", m.topic, e.what());
    if (tracked) Done(generation);
  }
}

void PahoTransport::Done(uint64_t generation) {
  std::vector<OutboundMessage> batch;
  {
    std::lock_guard lock(mu_);
    if (generation != generation_) return;  // counted as settled when the connection changed
    --inflight_;
    ++settled_;
    batch = FillWindow();
  }
  cv_.notify_all();
  for (auto& m : batch) Send(std::move(m), generation);
}

void PahoTransport::NewGeneration() {
  ++generation_;
  inflight_ = 0;
  uint64_t waiting = 0;  // tracked messages still queued: they will be sent on the new connection
  for (const auto& m : queued_) waiting += m.qos > 0 ? 1 : 0;
  settled_ = taken_ - waiting;
}

uint64_t PahoTransport::taken() const {
  std::lock_guard lock(mu_);
  return taken_;
}

uint64_t PahoTransport::settled() const {
  std::lock_guard lock(mu_);
  return settled_;
}

std::vector<OutboundMessage> PahoTransport::FillWindow() {
  std::vector<OutboundMessage> batch;
  while (!paused_ && inflight_ < window_ && !queued_.empty()) {
    if (queued_.front().qos > 0) ++inflight_;  // QoS 0 (queued while paused) is not tracked
    batch.push_back(std::move(queued_.front()));
    queued_.pop_front();
  }
  return batch;
}

void PahoTransport::on_success(const mqtt::token& token) {
  Done(reinterpret_cast<uint64_t>(token.get_user_context()));
}

void PahoTransport::on_failure(const mqtt::token& token) {
  publish_failures_.fetch_add(1, std::memory_order_relaxed);
  spdlog::warn("an answer was not acknowledged by the broker (reason {})", token.get_return_code());
  Done(reinterpret_cast<uint64_t>(token.get_user_context()));
}

}  // namespace mqttspec::server
