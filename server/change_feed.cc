#include "server/change_feed.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "adapters/change_log.h"
#include "common/blocking.h"
#include "protocol/render.h"
#include "server/matcher.h"

namespace mqttspec::server {

using adapters::Change;

ChangeFeed::ChangeFeed(Subscriptions& subscriptions, Transport& publisher, int qos, size_t capacity,
                       Events* events, ReplayPace pace)
    : subscriptions_(subscriptions),
      publisher_(publisher),
      events_(events),
      qos_(qos),
      capacity_(capacity),
      pace_(pace) {
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
    last_change_seq_ = std::max(last_change_seq_, c.change_seq);
    queue_.push_back(Numbered{subscriptions_.NumberChanges(1), std::move(c)});
    ++stats_.changes;
  }
  // Woken after the unlock: woken under it, the fan-out thread ran only to block on mu_ and had
  // to be woken a second time (two futex wakes per commit on the writer's thread, seen with
  // strace and perf sched at 1 create in flight).
  lock.unlock();
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
    {
      std::lock_guard fanning(fanout_mu_);
      try {
        FanOut(change);
      } catch (const std::exception& e) {
        spdlog::error("notification fan-out: {}", e.what());
      }
      fanned_through_ = std::max(fanned_through_, change.change.change_seq);
    }
    lock.lock();
    busy_ = false;
    if (queue_.empty()) idle_.notify_all();
  }
}

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
    e.operation = adapters::ChangeKindName(c.kind);
    if (m.primary_index() < row.size()) e.record_id = adapters::KeyText(row[m.primary_index()]);
    events_->Publish(std::move(e));
  }
  // Subscriptions made after this change was committed do not get it, nor a resumed one whose
  // replay already sent it (read from the log before the feed was told of the commit).
  auto newer = [&](const SubscriptionPtr& s) {
    return s->after >= numbered.number ||
           (c.change_seq > 0 && c.change_seq <= s->replayed_through.load());
  };
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
  const protocol::NotificationTemplate note(adapters::ChangeKindName(c.kind), m, row, c.change_seq);
  auto send = [&](const SubscriptionPtr& s, bool match) {
    Send(*s, note.For(s->id, s->seq.fetch_add(1, std::memory_order_relaxed) + 1, match));
  };
  for (const auto& s : matched) send(s, true);
  for (const auto& s : left) send(s, false);
  std::lock_guard lock(mu_);
  stats_.notifications += matched.size() + left.size();
}

void ChangeFeed::Send(const Subscription& s, std::string payload) {
  OutboundMessage out;
  out.topic = s.topic;
  out.qos = qos_;
  out.payload = std::move(payload);
  publisher_.Publish(std::move(out));
}

void ChangeFeed::Forget(const Subscription& s) {
  (void)subscriptions_.Cancel(s.id);
  if (SubscriptionKeeper* keeper = subscriptions_.keeper()) (void)keeper->Forget(s.client_id, s.id);
}

ChangeFeed::Position ChangeFeed::Checkpoint() {
  Position p;
  std::vector<SubscriptionPtr> all = subscriptions_.List("", "");
  std::lock_guard fanning(fanout_mu_);
  p.change_seq = fanned_through_;
  for (SubscriptionPtr& s : all) {
    if (s->after.load() == Subscription::kReplaying) continue;
    const uint64_t seq = s->seq.load();
    p.seqs.emplace_back(std::move(s), seq);
  }
  return p;
}

void ChangeFeed::EndAll(int64_t change_seq, const Error& why) {
  Drain();  // what was told before goes first
  for (const SubscriptionPtr& s : subscriptions_.List("", "")) {
    spdlog::warn("subscription {} of '{}' ends: {}", s->id, s->client_id, why.message);
    Send(*s, protocol::RenderResyncRequired(s->id, change_seq, why));
    Forget(*s);
  }
}

// A token bucket: `burst` notifications at once, refilled at `rate` per second. Waiting counts as
// blocking (common/blocking.h): the worker pool runs other clients meanwhile.
class ChangeFeed::Pacer {
 public:
  explicit Pacer(ReplayPace pace)
      : pace_(pace), tokens_(static_cast<double>(pace.burst)), last_(Clock::now()) {}

  void Take() {
    if (pace_.rate <= 0) return;
    Refill();
    if (tokens_ < 1) {
      // Wait for half a burst (at least one), not for every single token.
      const double want = std::max(1.0, static_cast<double>(pace_.burst) / 2);
      BlockingRegion waiting;
      std::this_thread::sleep_for(std::chrono::duration<double>((want - tokens_) / pace_.rate));
      Refill();
    }
    tokens_ -= 1;
  }

 private:
  using Clock = std::chrono::steady_clock;
  void Refill() {
    const auto now = Clock::now();
    tokens_ = std::min(static_cast<double>(std::max<size_t>(pace_.burst, 1)),
                       tokens_ + pace_.rate * std::chrono::duration<double>(now - last_).count());
    last_ = now;
  }

  ReplayPace pace_;
  double tokens_;
  Clock::time_point last_;
};

Result<int> ChangeFeed::ReplayOne(Subscription& s, const adapters::LoggedChange& c, Pacer& pacer) {
  const registry::Model& m = *s.model;
  if (c.schema != m.schema() || c.entity != m.entity()) return 0;
  auto row = adapters::DecodeRow(m, c.data);
  if (!row.ok()) return row.take_error();
  // As live (FanOut): the row matches, or — an update — the row before did and it left the view.
  bool match = Matches(m, s.filters, row.value());
  if (!match) {
    if (c.kind != Change::Kind::kUpdate || c.old_data.empty()) return 0;
    auto before = adapters::DecodeRow(m, c.old_data);
    if (!before.ok()) return before.take_error();
    if (!Matches(m, s.filters, before.value())) return 0;
  }
  const protocol::NotificationTemplate note(adapters::ChangeKindName(c.kind), m, row.value(),
                                            c.change_seq);
  pacer.Take();
  Send(s, note.For(s.id, s.seq.fetch_add(1, std::memory_order_relaxed) + 1, match));
  return 1;
}

void ChangeFeed::Resume(const SubscriptionPtr& s, int64_t since, adapters::Database& db,
                        bool marker) {
  int64_t cursor = since;  // every change up to here has been replayed (or did not match)
  uint64_t replayed = 0;
  Pacer pacer(pace_);
  auto end = [&](const std::string& why) {
    spdlog::warn("replay of {} for '{}' ends it: {}", s->id, s->client_id, why);
    // The notification first: a gRPC stream that sees the subscription gone still finds it.
    Send(*s,
         protocol::RenderResyncRequired(s->id, cursor, MakeError(ErrorCode::kResyncRequired, why)));
    Forget(*s);
  };
  for (;;) {
    if (!subscriptions_.Has(s->id)) return;  // unsubscribed or cancelled meanwhile
    if (replays_stopped_.load()) return;     // the service is stopping
    auto page = db.ReadChanges(cursor, kReplayPage);
    if (!page.ok()) return end("the change log could not be read: " + page.error().message);
    if (page.value().oldest > cursor + 1)
      return end(fmt::format("the change log no longer reaches back to change_seq {}", cursor + 1));
    for (const adapters::LoggedChange& c : page.value().changes) {
      if (replays_stopped_.load()) return;
      if (c.change_seq != cursor + 1)
        return end(fmt::format("the change log no longer holds change_seq {}", cursor + 1));
      auto sent = ReplayOne(*s, c, pacer);
      if (!sent.ok()) return end(fmt::format("change {}: {}", c.change_seq, sent.error().message));
      replayed += static_cast<uint64_t>(sent.value());
      cursor = c.change_seq;
    }
    if (page.value().changes.size() == kReplayPage) continue;
    std::lock_guard lock(mu_);
    // Changes committed after the page was read and already numbered: read them from the log
    // too. Any later one is numbered after `after` below, so the fan-out sends it live.
    if (last_change_seq_ > cursor) continue;
    if (marker) Send(*s, protocol::RenderReplayComplete(s->id, cursor, replayed));
    s->replayed_through.store(cursor);
    s->after.store(subscriptions_.numbered());
    stats_.notifications += replayed;
    return;
  }
}

}  // namespace mqttspec::server
