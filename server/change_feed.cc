#include "server/change_feed.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "protocol/render.h"

namespace mqttspec::server {

using adapters::Change;

ChangeFeed::ChangeFeed(Subscriptions& subscriptions, Transport& publisher, int qos, size_t capacity,
                       Events* events)
    : subscriptions_(subscriptions),
      publisher_(publisher),
      events_(events),
      qos_(qos),
      capacity_(capacity) {
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
    // Numbered here, in commit order and before the writer's answer leaves: a subscription
    // made after that answer is numbered past it (Subscription::after).
    queue_.push_back(Numbered{subscriptions_.NumberChanges(1), std::move(c)});
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
    Numbered change = std::move(queue_.front());
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

const char* OperationOf(Change::Kind k) {
  switch (k) {
    case Change::Kind::kCreate: return "create";
    case Change::Kind::kUpdate: return "update";
    case Change::Kind::kDelete: return "delete";
  }
  return "update";
}

}  // namespace

namespace {

// A primary key as text, for the event stream.
std::string KeyText(const Value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&v)) return fmt::format("{}", *d);
  if (const auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  return "null";
}

}  // namespace

void ChangeFeed::FanOut(const Numbered& numbered) {
  const Change& c = numbered.change;
  const registry::Model& m = *c.model;
  const Row& row = c.kind == Change::Kind::kDelete ? c.before : c.after;
  if (events_ && events_->active()) {
    Event e;
    e.kind = "change";
    e.time_ms = Events::NowMillis();
    e.schema = m.schema();
    e.entity = m.entity();
    e.operation = OperationOf(c.kind);
    if (m.primary_index() < row.size()) e.record_id = KeyText(row[m.primary_index()]);
    events_->Publish(std::move(e));
  }
  // Subscriptions made after this change was committed do not get it.
  auto newer = [&](const SubscriptionPtr& s) { return s->after >= numbered.number; };
  std::vector<SubscriptionPtr> matched = subscriptions_.Match(m, row);
  matched.erase(std::remove_if(matched.begin(), matched.end(), newer), matched.end());
  std::vector<SubscriptionPtr> left;  // matched the old row, not the new one
  if (c.kind == Change::Kind::kUpdate && !c.before.empty()) {
    for (auto& s : subscriptions_.Match(m, c.before)) {
      if (!newer(s) && std::find(matched.begin(), matched.end(), s) == matched.end())
        left.push_back(std::move(s));
    }
  }
  if (matched.empty() && left.empty()) return;

  // Rendered once: only the subscription id, seq and match flag differ between them.
  const protocol::NotificationTemplate note(OperationOf(c.kind), m, row);
  auto send = [&](const SubscriptionPtr& s, bool match) {
    OutboundMessage out;
    out.topic = s->topic;
    out.qos = qos_;
    out.payload = note.For(s->id, s->seq.fetch_add(1, std::memory_order_relaxed) + 1, match);
    publisher_.Publish(std::move(out));
  };
  for (const auto& s : matched) send(s, true);
  for (const auto& s : left) send(s, false);
  std::lock_guard lock(mu_);
  stats_.notifications += matched.size() + left.size();
}

}  // namespace mqttspec::server
