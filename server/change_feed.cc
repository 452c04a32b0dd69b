#include "server/change_feed.h"

#include <spdlog/spdlog.h>

#include "common/time_util.h"
#include "server/response.h"

namespace mqttspec::server {

using adapters::Change;

ChangeFeed::ChangeFeed(Subscriptions& subscriptions, Publisher& publisher, int qos, size_t capacity)
    : subscriptions_(subscriptions), publisher_(publisher), qos_(qos), capacity_(capacity) {
  thread_ = std::thread([this] { Run(); });
}

ChangeFeed::~ChangeFeed() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  ready_.notify_all();
  thread_.join();
}

void ChangeFeed::OnCommitted(std::vector<Change> changes) {
  std::unique_lock lock(mu_);
  for (Change& c : changes) {
    if (queue_.size() >= capacity_) {
      ++stats_.backpressure_waits;
      ready_.notify_one();  // what is queued so far must drain, or the wait never ends
      space_.wait(lock, [&] { return queue_.size() < capacity_ || stopping_; });
    }
    queue_.push_back(std::move(c));
    ++stats_.changes;
  }
  ready_.notify_one();
}

void ChangeFeed::Drain() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [&] { return queue_.empty() && !busy_; });
}

ChangeFeed::Stats ChangeFeed::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void ChangeFeed::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    Change change = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    space_.notify_one();
    try {
      FanOut(change);
    } catch (const std::exception& e) {
      spdlog::error("notification fan-out: {}", e.what());
    }
    lock.lock();
    busy_ = false;
    if (queue_.empty()) idle_.notify_all();
  }
}

namespace {

std::string RenderRow(const registry::Model& m, const Row& row) {
  std::vector<int> all(m.fields().size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WriteRow(m, all, row, w);
  return {buf.GetString(), buf.GetSize()};
}

const char* OperationOf(Change::Kind k) {
  switch (k) {
    case Change::Kind::kCreate: return "create";
    case Change::Kind::kUpdate: return "update";
    case Change::Kind::kDelete: return "delete";
  }
  return "update";
}

}  // namespace

void ChangeFeed::FanOut(const Change& c) {
  const registry::Model& m = *c.model;
  const Row& row = c.kind == Change::Kind::kDelete ? c.before : c.after;
  std::vector<SubscriptionPtr> matched = subscriptions_.Match(m, row);
  std::vector<SubscriptionPtr> left;  // matched the old row, not the new one
  if (c.kind == Change::Kind::kUpdate && !c.before.empty()) {
    for (auto& s : subscriptions_.Match(m, c.before)) {
      if (std::find(matched.begin(), matched.end(), s) == matched.end())
        left.push_back(std::move(s));
    }
  }
  if (matched.empty() && left.empty()) return;

  // Everything but the subscription id, seq and match flag is the same for all of them.
  const std::string data = RenderRow(m, row);
  const std::string head = std::string(R"({"type":"notification","operation":")") +
                           OperationOf(c.kind) + R"(","subscription_id":")";
  const std::string middle = R"(","schema":")" + m.schema() + R"(","entity":")" + m.entity() +
                             R"(","data":)" + data + R"(,"seq":)";
  const std::string tail = R"(,"timestamp":")" + NowIso8601() + "\"}";
  auto send = [&](const SubscriptionPtr& s, bool match) {
    OutboundMessage out;
    out.topic = s->topic;
    out.qos = qos_;
    const uint64_t seq = s->seq.fetch_add(1, std::memory_order_relaxed) + 1;
    out.payload.reserve(head.size() + s->id.size() + middle.size() + tail.size() + 32);
    out.payload += head;
    out.payload += s->id;
    out.payload += middle;
    out.payload += std::to_string(seq);
    if (!match) out.payload += R"(,"match":false)";
    out.payload += tail;
    publisher_.Publish(std::move(out));
  };
  for (const auto& s : matched) send(s, true);
  for (const auto& s : left) send(s, false);
  std::lock_guard lock(mu_);
  stats_.notifications += matched.size() + left.size();
}

}  // namespace mqttspec::server
