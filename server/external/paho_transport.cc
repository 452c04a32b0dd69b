#include "server/external/paho_transport.h"

#include <spdlog/spdlog.h>

#include <mqtt/async_client.h>

#include "server/service.h"

namespace mqttspec::server {

PahoTransport::PahoTransport(const BrokerConfig& broker, int request_qos)
    : broker_(broker), request_qos_(request_qos) {
  mqtt::create_options opts(MQTTVERSION_5);
  opts.set_max_buffered_messages(100000);  // answers queue while the broker is away
  opts.set_send_while_disconnected(true, true);
  client_ = std::make_unique<mqtt::async_client>(broker_.url, broker_.client_id, opts, nullptr);
}

PahoTransport::~PahoTransport() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (connector_.joinable()) connector_.join();
}

bool PahoTransport::connected() const { return client_->is_connected(); }

void PahoTransport::Start(Service& service) {
  service_ = &service;
  filter_ = service.RequestFilter();
  if (!broker_.shared_group.empty()) filter_ = "$share/" + broker_.shared_group + "/" + filter_;

  client_->set_message_callback([this](mqtt::const_message_ptr msg) {
    InboundMessage in;
    in.topic = msg->get_topic();
    in.payload = msg->get_payload_str();
    mqtt::properties props = msg->get_properties();  // get() wants a non-const copy
    if (props.contains(mqtt::property::RESPONSE_TOPIC))
      in.response_topic = mqtt::get<std::string>(props, mqtt::property::RESPONSE_TOPIC);
    if (props.contains(mqtt::property::CORRELATION_DATA))
      in.correlation_data = mqtt::get<mqtt::binary>(props, mqtt::property::CORRELATION_DATA);
    service_->OnMessage(std::move(in));
  });
  client_->set_connected_handler([this](const std::string&) {
    spdlog::info("connected to broker {}", broker_.url);
    Subscribe();
  });
  client_->set_connection_lost_handler([this](const std::string& cause) {
    spdlog::warn("lost the broker connection ({}); reconnecting", cause.empty() ? "no reason" : cause);
  });
  connector_ = std::thread([this] { ConnectLoop(); });
}

void PahoTransport::Subscribe() {
  {
    std::lock_guard lock(mu_);
    if (!taking_) return;
  }
  try {
    client_->subscribe(filter_, request_qos_);
    spdlog::info("taking requests on {}", filter_);
  } catch (const mqtt::exception& e) {
    spdlog::error("subscribe to {} failed: {}", filter_, e.what());
  }
}

void PahoTransport::ConnectLoop() {
  auto opts = mqtt::connect_options_builder()
                  .mqtt_version(MQTTVERSION_5)
                  .clean_start(true)
                  .keep_alive_interval(std::chrono::seconds(30))
                  .automatic_reconnect(std::chrono::seconds(1), std::chrono::seconds(30))
                  .max_inflight(1000)
                  .finalize();
  if (!broker_.username.empty()) opts.set_user_name(broker_.username);
  if (!broker_.password.empty()) opts.set_password(broker_.password);
  auto delay = std::chrono::seconds(1);
  for (;;) {
    try {
      client_->connect(opts)->wait();
      return;  // from here on Paho reconnects by itself, and on_connected re-subscribes
    } catch (const mqtt::exception& e) {
      spdlog::warn("cannot connect to broker {}: {}; retrying in {} s", broker_.url, e.what(),
                   delay.count());
    }
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, delay, [&] { return stopping_; })) return;
    delay = std::min(delay * 2, std::chrono::seconds(30));
  }
}

void PahoTransport::StopTaking() {
  {
    std::lock_guard lock(mu_);
    taking_ = false;
  }
  if (!client_->is_connected()) return;
  try {
    client_->unsubscribe(filter_)->wait_for(std::chrono::seconds(2));
  } catch (const mqtt::exception& e) {
    spdlog::warn("unsubscribe failed: {}", e.what());
  }
}

void PahoTransport::Stop(std::chrono::milliseconds timeout) {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (connector_.joinable()) connector_.join();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (auto& token : client_->get_pending_delivery_tokens()) {
    auto left = deadline - std::chrono::steady_clock::now();
    if (left <= left.zero()) break;
    try {
      token->wait_for(std::chrono::duration_cast<std::chrono::milliseconds>(left));
    } catch (const mqtt::exception&) {
    }
  }
  try {
    if (client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(5));
  } catch (const mqtt::exception& e) {
    spdlog::warn("disconnect failed: {}", e.what());
  }
}

void PahoTransport::Publish(OutboundMessage m) {
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
    client_->publish(std::move(msg));
  } catch (const mqtt::exception& e) {
    // -12 "no more messages can be buffered" and friends: count, never crash.
    publish_failures_.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("publish to {} failed: {}", m.topic, e.what());
  }
}

}  // namespace mqttspec::server
