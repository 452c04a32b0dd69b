// ChangeFeed: committed changes become notifications — payload as in PROTOCOL.md §Notifications,
// create / update / delete / batch create, "match": false when an update takes a row out of a
// subscription's view, seq per subscription gap-free, commit order kept under concurrent writers,
// the fan-out of 10 000 notifications off the writer's path (ChangeFeed alone and through the
// Service), and back-pressure: a full queue makes the writer wait, counted, nothing dropped.
#include "server/change_feed.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "server/core.h"
#include "server/mqtt_front.h"
#include "server/service.h"
#include "tests/unit/test_builders.h"

namespace mqttspec::server {
namespace {

using namespace mqttspec::testing;  // NOLINT: the shared test builders

using adapters::Change;
using adapters::FilterList;
using adapters::FilterNode;
using adapters::Logic;
using adapters::Op;
using registry::Field;
using registry::FieldType;
using registry::Model;
using registry::ModelPtr;
using Clock = std::chrono::steady_clock;

enum { kId = 0, kStatus, kN, kActive };

ModelPtr Things() {
  auto m =
      Model::Create("public", "things",
                    {MakeField("id", FieldType::kInteger), MakeField("status", FieldType::kText),
                     MakeField("n", FieldType::kInteger), MakeField("active", FieldType::kBoolean)},
                    "id");
  EXPECT_TRUE(m.ok());
  return m.value();
}

Row R(int64_t id, std::string status, int64_t n = 0, int64_t active = 1) {
  return Row{I(id), S(std::move(status)), I(n), I(active)};
}

Change Create(const Model& m, Row after) {
  Change c;
  c.kind = Change::Kind::kCreate;
  c.model = &m;
  c.after = std::move(after);
  return c;
}
Change Update(const Model& m, Row before, Row after) {
  Change c;
  c.kind = Change::Kind::kUpdate;
  c.model = &m;
  c.before = std::move(before);
  c.after = std::move(after);
  return c;
}
Change Delete(const Model& m, Row before) {
  Change c;
  c.kind = Change::Kind::kDelete;
  c.model = &m;
  c.before = std::move(before);
  return c;
}
std::vector<Change> One(Change c) {
  std::vector<Change> v;
  v.push_back(std::move(c));
  return v;
}

// Records what would go to the broker, with the time it was handed over. Messages for which
// `hold` is true wait until Open() (the first such message is counted in `held`).
class HoldingTransport : public Transport {
 public:
  struct Sent {
    OutboundMessage msg;
    Clock::time_point at;
  };

  void Publish(OutboundMessage m) override {
    std::unique_lock l(mu_);
    if (hold && hold(m)) {
      ++held_;
      cv_.notify_all();
      cv_.wait(l, [&] { return open_; });
    }
    sent_.push_back({std::move(m), Clock::now()});
    cv_.notify_all();
  }

  void Open() {
    std::lock_guard l(mu_);
    open_ = true;
    cv_.notify_all();
  }

  // Waits (at most `timeout`) until pred(sent, held) holds; returns whether it does.
  bool WaitUntil(const std::function<bool(const std::vector<Sent>&, int)>& pred,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, timeout, [&] { return pred(sent_, held_); });
  }

  std::vector<Sent> sent() {
    std::lock_guard l(mu_);
    return sent_;
  }
  size_t count() {
    std::lock_guard l(mu_);
    return sent_.size();
  }

  std::function<bool(const OutboundMessage&)> hold;  // set before use

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Sent> sent_;
  int held_ = 0;
  bool open_ = false;
};

rapidjson::Document Parse(const std::string& payload) {
  rapidjson::Document d;
  d.Parse(payload.c_str(), payload.size());
  EXPECT_FALSE(d.HasParseError()) << payload;
  EXPECT_TRUE(d.IsObject()) << payload;
  return d;
}

uint64_t SeqOf(const rapidjson::Document& d) { return d["seq"].GetUint64(); }

class ChangeFeedTest : public ::testing::Test {
 protected:
  SubscriptionPtr Sub(const FilterList& f, const std::string& client = "sub-client") {
    auto s = subs_.Add(client, model_, f);
    EXPECT_TRUE(s.ok());
    return s.value();
  }
  std::vector<rapidjson::Document> PayloadsFor(const SubscriptionPtr& s) {
    std::vector<rapidjson::Document> out;
    for (const auto& m : pub_.sent())
      if (m.msg.topic == s->topic) out.push_back(Parse(m.msg.payload));
    return out;
  }

  ModelPtr model_ = Things();
  Subscriptions subs_{"spec", 100000};
  HoldingTransport pub_;
};

TEST_F(ChangeFeedTest, CreateUpdateDeleteNotifyWithTheDocumentedPayload) {
  auto active = Sub({Cond(kStatus, Op::kEq, {S("active")})});
  auto other = Sub({Cond(kStatus, Op::kEq, {S("banned")})}, "someone-else");
  {
    ChangeFeed feed(subs_, pub_, /*qos=*/2, 100);
    feed.OnCommitted(One(Create(*model_, R(10, "active", 5))));
    feed.OnCommitted(One(Update(*model_, R(10, "active", 5), R(10, "active", 6))));
    feed.OnCommitted(One(Delete(*model_, R(10, "active", 6))));
    feed.Drain();
    EXPECT_EQ(feed.stats().changes, 3u);
    EXPECT_EQ(feed.stats().notifications, 3u);
  }
  auto sent = pub_.sent();
  ASSERT_EQ(sent.size(), 3u);
  const std::regex iso(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$)");
  const char* ops[] = {"create", "update", "delete"};
  const int64_t ns[] = {5, 6, 6};
  for (size_t i = 0; i < 3; ++i) {
    const auto& m = sent[i].msg;
    EXPECT_EQ(m.topic, "spec/sub-client/notify/" + active->id);
    EXPECT_EQ(m.qos, 2) << "notifications go out at the configured QoS";
    auto d = Parse(m.payload);
    EXPECT_STREQ(d["type"].GetString(), "notification") << m.payload;
    EXPECT_STREQ(d["operation"].GetString(), ops[i]) << m.payload;
    EXPECT_EQ(std::string(d["subscription_id"].GetString()), active->id);
    EXPECT_STREQ(d["schema"].GetString(), "public");
    EXPECT_STREQ(d["entity"].GetString(), "things");
    ASSERT_TRUE(d["data"].IsObject()) << m.payload;
    EXPECT_EQ(d["data"]["id"].GetInt64(), 10);
    EXPECT_STREQ(d["data"]["status"].GetString(), "active");
    EXPECT_EQ(d["data"]["n"].GetInt64(), ns[i])
        << "create/update: the new row; delete: the deleted row";
    EXPECT_TRUE(d["data"]["active"].IsBool()) << "booleans render as JSON booleans: " << m.payload;
    EXPECT_EQ(SeqOf(d), i + 1);
    EXPECT_TRUE(std::regex_match(std::string(d["timestamp"].GetString()), iso)) << m.payload;
    EXPECT_FALSE(d.HasMember("match") && d["match"].IsFalse()) << m.payload;
  }
  EXPECT_EQ(other->seq.load(), 0u);
}

TEST_F(ChangeFeedTest, NonMatchingChangesAndOtherEntitiesNotifyNobody) {
  auto s = Sub({Cond(kStatus, Op::kEq, {S("active")})});
  auto other_model = Model::Create(
      "public", "others",
      {MakeField("id", FieldType::kInteger), MakeField("status", FieldType::kText)}, "id");
  ASSERT_TRUE(other_model.ok());
  {
    ChangeFeed feed(subs_, pub_, 1, 100);
    feed.OnCommitted(One(Create(*model_, R(1, "inactive"))));
    feed.OnCommitted(One(Update(*model_, R(1, "inactive"), R(1, "pending"))));
    feed.OnCommitted(One(Delete(*model_, R(1, "pending"))));
    feed.OnCommitted(One(Create(*other_model.value(), Row{I(1), S("active")})));
    feed.Drain();
    EXPECT_EQ(feed.stats().changes, 4u);
    EXPECT_EQ(feed.stats().notifications, 0u);
  }
  EXPECT_EQ(pub_.count(), 0u);
  EXPECT_EQ(s->seq.load(), 0u);
}

TEST_F(ChangeFeedTest, BatchCreateNotifiesEveryRowInOrder) {
  auto s = Sub({Cond(kStatus, Op::kEq, {S("active")})});
  {
    ChangeFeed feed(subs_, pub_, 1, 100);
    std::vector<Change> batch;
    for (int i = 1; i <= 5; ++i)
      batch.push_back(Create(*model_, R(i, i == 3 ? "inactive" : "active")));
    feed.OnCommitted(std::move(batch));
    feed.Drain();
  }
  auto got = PayloadsFor(s);
  ASSERT_EQ(got.size(), 4u);
  const int64_t ids[] = {1, 2, 4, 5};
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_STREQ(got[i]["operation"].GetString(), "create");
    EXPECT_EQ(got[i]["data"]["id"].GetInt64(), ids[i]);
    EXPECT_EQ(SeqOf(got[i]), i + 1);
  }
}

TEST_F(ChangeFeedTest, AnUpdateThatLeavesTheViewSendsMatchFalseAndOneThatEntersANormalUpdate) {
  auto active = Sub({Cond(kStatus, Op::kEq, {S("active")})});
  auto banned = Sub({Cond(kStatus, Op::kEq, {S("banned")})});
  auto all = Sub({});
  {
    ChangeFeed feed(subs_, pub_, 1, 100);
    feed.OnCommitted(One(Create(*model_, R(1, "active"))));
    feed.OnCommitted(One(Update(*model_, R(1, "active"), R(1, "banned"))));  // leaves active
    feed.OnCommitted(One(Update(*model_, R(1, "banned"), R(1, "active"))));  // enters active
    feed.Drain();
  }
  auto a = PayloadsFor(active);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_STREQ(a[1]["operation"].GetString(), "update");
  ASSERT_TRUE(a[1].HasMember("match")) << "leaving the view must say so";
  EXPECT_TRUE(a[1]["match"].IsFalse());
  EXPECT_STREQ(a[1]["data"]["status"].GetString(), "banned") << "data is the row as it is now";
  EXPECT_STREQ(a[2]["operation"].GetString(), "update");
  EXPECT_FALSE(a[2].HasMember("match") && a[2]["match"].IsFalse());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(SeqOf(a[i]), i + 1);

  auto b = PayloadsFor(banned);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_FALSE(b[0].HasMember("match") && b[0]["match"].IsFalse()) << "entering: a normal update";
  EXPECT_TRUE(b[1].HasMember("match") && b[1]["match"].IsFalse()) << "then leaving";
  EXPECT_EQ(SeqOf(b[0]), 1u);
  EXPECT_EQ(SeqOf(b[1]), 2u);

  auto c = PayloadsFor(all);
  ASSERT_EQ(c.size(), 3u);
  for (const auto& d : c) EXPECT_FALSE(d.HasMember("match") && d["match"].IsFalse());
}

TEST_F(ChangeFeedTest, SeqIsPerSubscriptionAndGapFree) {
  auto evens = Sub({Cond(kN, Op::kIn, {I(0), I(2), I(4), I(6), I(8)})});
  auto big = Sub({Cond(kN, Op::kGte, {I(5)})});
  auto everything = Sub({Cond(kId, Op::kIsNotNull, {})});
  {
    ChangeFeed feed(subs_, pub_, 1, 100);
    for (int n = 0; n < 10; ++n) feed.OnCommitted(One(Create(*model_, R(n + 1, "x", n))));
    feed.Drain();
  }
  for (const auto& [sub, expected] :
       std::vector<std::pair<SubscriptionPtr, size_t>>{{evens, 5}, {big, 5}, {everything, 10}}) {
    auto got = PayloadsFor(sub);
    ASSERT_EQ(got.size(), expected);
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(SeqOf(got[i]), i + 1);
    EXPECT_EQ(sub->seq.load(), expected);
  }
}

TEST_F(ChangeFeedTest, ConcurrentWritersNotificationsFollowCommitOrder) {
  // Like the SQLite adapter, writers hand over their changes while holding the commit lock; the
  // commit log is the order they committed in. Each writer updates its own row with a rising
  // counter. Every subscription must see exactly the commit order, seq gap-free.
  auto indexed = Sub({Cond(kStatus, Op::kEq, {S("live")})});
  auto scanned = Sub({Cond(kN, Op::kGte, {I(0)})});
  constexpr int kWriters = 4, kUpdates = 500;
  std::mutex commit_mu;
  std::vector<std::pair<int64_t, int64_t>> commit_log;  // (row, counter)
  {
    ChangeFeed feed(subs_, pub_, 1, 64);  // small queue: writers also meet back-pressure
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        for (int k = 1; k <= kUpdates; ++k) {
          std::lock_guard l(commit_mu);
          commit_log.emplace_back(w, k);
          feed.OnCommitted(One(Update(*model_, R(w, "live", k - 1), R(w, "live", k))));
        }
      });
    }
    for (auto& t : writers) t.join();
    feed.Drain();
  }
  for (const auto& sub : {indexed, scanned}) {
    auto got = PayloadsFor(sub);
    ASSERT_EQ(got.size(), commit_log.size());
    std::map<int64_t, int64_t> last;
    for (size_t i = 0; i < got.size(); ++i) {
      const int64_t row = got[i]["data"]["id"].GetInt64(), n = got[i]["data"]["n"].GetInt64();
      ASSERT_EQ(SeqOf(got[i]), i + 1) << "seq gap";
      ASSERT_EQ(std::make_pair(row, n), commit_log[i])
          << "notification " << i << " out of commit order";
      ASSERT_GT(n, last[row]) << "row " << row << " went back in time";
      last[row] = n;
    }
  }
}

TEST_F(ChangeFeedTest, FanOutToTenThousandSubscribersDoesNotHoldUpTheWriter) {
  // The publisher holds every notification until the test opens it: the writer must get back
  // from OnCommitted while none of the 10 000 notifications has been handed over.
  constexpr int kSubscribers = 10000;
  for (int i = 0; i < kSubscribers; ++i)
    Sub({Cond(kStatus, Op::kEq, {S("hot")})}, "c" + std::to_string(i));
  Sub({Cond(kStatus, Op::kEq, {S("cold")})}, "cold");
  pub_.hold = [](const OutboundMessage&) { return true; };
  ChangeFeed feed(subs_, pub_, 1, 100);
  std::atomic<bool> returned{false};
  std::thread writer([&] {
    feed.OnCommitted(One(Create(*model_, R(1, "hot"))));
    returned = true;
  });
  // Bounded: the writer must be back within 5 s although the fan-out cannot progress.
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!returned && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const size_t published_when_writer_returned = pub_.count();
  const bool writer_back = returned.load();
  pub_.Open();  // whatever happened, let everything go
  writer.join();
  EXPECT_TRUE(writer_back) << "OnCommitted waited for the fan-out";
  EXPECT_EQ(published_when_writer_returned, 0u);
  feed.Drain();
  auto sent = pub_.sent();
  ASSERT_EQ(sent.size(), static_cast<size_t>(kSubscribers)) << "every subscriber, once";
  std::set<std::string> topics;
  for (const auto& m : sent) topics.insert(m.msg.topic);
  EXPECT_EQ(topics.size(), static_cast<size_t>(kSubscribers));
}

TEST_F(ChangeFeedTest, WriterLatencyVersusFanOutOfTenThousandMeasured) {
  // Not gated: how long the writer spends in OnCommitted against how long the fan-out of 10 000
  // notifications takes (printed). Asserted only with a generous bound (the ordering itself is
  // asserted deterministically by the gated test above).
  constexpr int kSubscribers = 10000;
  for (int i = 0; i < kSubscribers; ++i)
    Sub({Cond(kStatus, Op::kEq, {S("hot")})}, "c" + std::to_string(i));
  ChangeFeed feed(subs_, pub_, 1, 100);
  const auto t0 = Clock::now();
  feed.OnCommitted(One(Create(*model_, R(1, "hot"))));
  const auto t_writer = Clock::now();
  feed.Drain();
  auto sent = pub_.sent();
  ASSERT_EQ(sent.size(), static_cast<size_t>(kSubscribers));
  auto us = [](auto d) { return std::chrono::duration_cast<std::chrono::microseconds>(d).count(); };
  const auto writer_us = us(t_writer - t0);
  const auto first_us = us(sent.front().at - t0), last_us = us(sent.back().at - t0);
  std::printf("writer back after %lld us; fan-out: first notification %lld us, 10000th %lld us\n",
              static_cast<long long>(writer_us), static_cast<long long>(first_us),
              static_cast<long long>(last_us));
  RecordProperty("writer_us", std::to_string(writer_us));
  RecordProperty("fanout_last_us", std::to_string(last_us));
  EXPECT_LT(writer_us, 1000000) << "the writer should only queue the change";
}

TEST_F(ChangeFeedTest, AFullQueueMakesTheWriterWaitCountedAndNothingIsDropped) {
  auto s = Sub({Cond(kStatus, Op::kEq, {S("x")})});
  pub_.hold = [](const OutboundMessage&) { return true; };
  constexpr int kChanges = 8;
  std::atomic<int> handed_over{0};
  ChangeFeed feed(subs_, pub_, 1, /*capacity=*/2);
  std::thread writer([&] {
    for (int i = 1; i <= kChanges; ++i) {
      feed.OnCommitted(One(Update(*model_, R(1, "x", i - 1), R(1, "x", i))));
      ++handed_over;
    }
  });
  // The fan-out thread holds change 1 (blocked in Publish), changes 2 and 3 fill the queue, so
  // the writer waits in OnCommitted of change 4.
  bool waited = false;
  for (const auto deadline = Clock::now() + std::chrono::seconds(5); Clock::now() < deadline;) {
    if (pub_.WaitUntil([](const auto&, int held) { return held >= 1; },
                       std::chrono::milliseconds(1)) &&
        feed.stats().backpressure_waits >= 1 && handed_over.load() == 3) {
      waited = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // still held there?
  const int before_release = handed_over.load();
  pub_.Open();
  writer.join();
  feed.Drain();
  EXPECT_TRUE(waited) << "the writer never had to wait (backpressure_waits = "
                      << feed.stats().backpressure_waits << ")";
  EXPECT_EQ(before_release, 3) << "the writer must be held at change 4 while the queue is full";
  auto st = feed.stats();
  EXPECT_GE(st.backpressure_waits, 1u);
  EXPECT_EQ(st.changes, static_cast<uint64_t>(kChanges));
  EXPECT_EQ(st.notifications, static_cast<uint64_t>(kChanges));
  auto got = PayloadsFor(s);
  ASSERT_EQ(got.size(), static_cast<size_t>(kChanges)) << "nothing dropped";
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(SeqOf(got[i]), i + 1);
    EXPECT_EQ(got[i]["data"]["n"].GetInt64(), static_cast<int64_t>(i + 1));
  }
}

TEST_F(ChangeFeedTest, AChangeCommittedBeforeASubscriptionNeverReachesItHoweverLateTheFanOut) {
  // The writer's answer follows the commit; a client that subscribes after seeing it must not get
  // that change, even when the fan-out thread reaches the change only after the subscription
  // exists (found under CI load: "writes before subscribing are not replayed" failed).
  auto early = Sub({Cond(kStatus, Op::kEq, {S("x")})}, "early");
  pub_.hold = [](const OutboundMessage&) { return true; };
  ChangeFeed feed(subs_, pub_, 1, 100);
  feed.OnCommitted(One(Create(*model_, R(1, "x", 1))));  // fan-out held in Publish on it
  ASSERT_TRUE(pub_.WaitUntil([](const auto&, int held) { return held >= 1; },
                             std::chrono::seconds(5)));
  feed.OnCommitted(One(Create(*model_, R(2, "x", 2))));  // committed, still queued
  auto late = Sub({Cond(kStatus, Op::kEq, {S("x")})}, "late");
  feed.OnCommitted(One(Create(*model_, R(3, "x", 3))));  // after the subscription
  pub_.Open();
  feed.Drain();
  EXPECT_EQ(PayloadsFor(early).size(), 3u);
  auto got = PayloadsFor(late);
  ASSERT_EQ(got.size(), 1u) << "only the change committed after it subscribed";
  EXPECT_EQ(got[0]["data"]["id"].GetInt64(), 3);
  EXPECT_EQ(SeqOf(got[0]), 1u);
}

TEST_F(ChangeFeedTest, ABatchLargerThanTheQueueIsAcceptedWhileTheFeedIsIdle) {
  // One commit with more changes than the queue holds (a batch create), arriving while the
  // fan-out thread sleeps on an empty queue: the writer must wait for space, not forever.
  auto s = Sub({Cond(kStatus, Op::kEq, {S("x")})});
  ChangeFeed feed(subs_, pub_, 1, /*capacity=*/2);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let the feed thread go idle
  std::atomic<bool> done{false};
  std::thread writer([&] {
    std::vector<Change> batch;
    for (int i = 1; i <= 5; ++i) batch.push_back(Create(*model_, R(i, "x")));
    feed.OnCommitted(std::move(batch));
    done = true;
  });
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!done && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const bool finished = done.load();
  // Rescue, so the test ends: an empty commit wakes the fan-out thread (repeatedly: it may go
  // back to sleep on an emptied queue while the writer still waits for space).
  while (!done) {
    feed.OnCommitted({});
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  writer.join();
  EXPECT_TRUE(finished) << "OnCommitted of a 5-change batch with capacity 2 did not return within "
                           "5 s: the writer waits for space but the idle fan-out thread was never "
                           "woken for the changes already queued (deadlock)";
  feed.Drain();
  EXPECT_EQ(PayloadsFor(s).size(), 5u);
}

TEST_F(ChangeFeedTest, DestroyingTheFeedPublishesWhatIsQueued) {
  auto s = Sub({Cond(kStatus, Op::kEq, {S("x")})});
  pub_.hold = [](const OutboundMessage&) { return true; };
  {
    ChangeFeed feed(subs_, pub_, 1, 100);
    for (int i = 1; i <= 20; ++i) feed.OnCommitted(One(Create(*model_, R(i, "x"))));
    ASSERT_TRUE(
        pub_.WaitUntil([](const auto&, int held) { return held >= 1; }, std::chrono::seconds(5)));
    pub_.Open();
  }  // ~ChangeFeed
  EXPECT_EQ(PayloadsFor(s).size(), 20u);
}

TEST_F(ChangeFeedTest, DrainWaitsForTheChangeBeingFannedOut) {
  auto s = Sub({Cond(kStatus, Op::kEq, {S("x")})});
  pub_.hold = [](const OutboundMessage&) { return true; };
  ChangeFeed feed(subs_, pub_, 1, 100);
  feed.OnCommitted(One(Create(*model_, R(1, "x"))));
  ASSERT_TRUE(
      pub_.WaitUntil([](const auto&, int held) { return held >= 1; }, std::chrono::seconds(5)));
  std::atomic<bool> drained{false};
  std::thread t([&] {
    feed.Drain();
    drained = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(drained.load()) << "Drain returned while a notification was still being published";
  pub_.Open();
  t.join();
  EXPECT_EQ(PayloadsFor(s).size(), 1u);
}

// --- through the Service ---------------------------------------------------------------------

TEST(ChangeFeedServiceTest, WritersResponseIsPublishedBeforeTheFanOutToTenThousandCompletes) {
  auto cfg = ParseConfig(R"(
models:
  - name: things
    fields: [{name: id, type: integer, auto_increment: true}, {name: status, type: text}]
)");
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  Config config = cfg.value();
  config.workers = 2;
  config.database.path = ":memory:";
  auto core_or = Core::Create(config);
  ASSERT_TRUE(core_or.ok()) << core_or.error().message;
  auto core = std::move(core_or).value();
  ModelPtr model = core->models().Find("public", "things");
  ASSERT_NE(model, nullptr);
  constexpr int kSubscribers = 10000;
  for (int i = 0; i < kSubscribers; ++i) {
    auto s = core->subscriptions().Add("c" + std::to_string(i), model,
                                       {Cond(1, Op::kEq, {S("active")})});
    ASSERT_TRUE(s.ok());
  }
  HoldingTransport pub;
  pub.hold = [](const OutboundMessage& m) { return m.topic.find("/notify/") != std::string::npos; };
  Service service(config, *core, pub);
  MqttFront front(config, service, pub);
  InboundMessage in;
  in.topic = "spec/writer/request";
  in.payload =
      R"({"id":"w1","type":"request","operation":"create","entity":"things","data":{"status":"active"}})";
  front.OnMessage(in);
  const bool answered = pub.WaitUntil(
      [](const auto& sent, int) {
        for (const auto& s : sent)
          if (s.msg.topic == "spec/writer/response") return true;
        return false;
      },
      std::chrono::seconds(5));
  const size_t notifications_before = pub.count() - (answered ? 1 : 0);
  pub.Open();
  service.Drain();
  EXPECT_TRUE(answered) << "the writer's response waited for the fan-out of " << kSubscribers
                        << " notifications";
  EXPECT_EQ(notifications_before, 0u);
  auto sent = pub.sent();
  ASSERT_EQ(sent.size(), static_cast<size_t>(kSubscribers) + 1);
  EXPECT_EQ(sent.front().msg.topic, "spec/writer/response");
  EXPECT_NE(sent.front().msg.payload.find(R"("success":true)"), std::string::npos)
      << sent.front().msg.payload;
}

// A small service over SQLite in memory, driven like a broker would: the fixture of the resume
// tests below.
struct ResumeEnv {
  explicit ResumeEnv(const char* extra_config = "") {
    auto cfg = ParseConfig(std::string(R"(
models:
  - name: things
    fields: [{name: id, type: integer, auto_increment: true}, {name: status, type: text}]
)") + extra_config);
    EXPECT_TRUE(cfg.ok()) << cfg.error().message;
    config = cfg.value();
    config.workers = 2;
    config.database.path = ":memory:";
    auto core_or = Core::Create(config);
    EXPECT_TRUE(core_or.ok()) << core_or.error().message;
    core = std::move(core_or).value();
    service = std::make_unique<Service>(config, *core, pub);
    front = std::make_unique<MqttFront>(config, *service, pub);
  }
  ~ResumeEnv() {
    front.reset();
    service.reset();
  }
  // Sends `payload` as `client`, as the broker would hand it over.
  void Send(const std::string& client, const std::string& payload) {
    InboundMessage in;
    in.topic = "spec/" + client + "/request";
    in.payload = payload;
    front->OnMessage(in);
  }
  // Sends `payload` as `client` and returns its answer.
  rapidjson::Document Ask(const std::string& client, const std::string& payload) {
    const size_t before = pub.count();
    Send(client, payload);
    std::string answer;
    EXPECT_TRUE(pub.WaitUntil([&](const auto& sent, int) {
      for (size_t i = before; i < sent.size(); ++i)
        if (sent[i].msg.topic == "spec/" + client + "/response") {
          answer = sent[i].msg.payload;
          return true;
        }
      return false;
    }));
    return Parse(answer);
  }
  // The notifications on `topic` so far (after the service is drained).
  std::vector<rapidjson::Document> On(const std::string& topic) {
    service->Drain();
    std::vector<rapidjson::Document> out;
    for (const auto& m : pub.sent())
      if (m.msg.topic == topic) out.push_back(Parse(m.msg.payload));
    return out;
  }

  Config config;
  std::unique_ptr<Core> core;
  HoldingTransport pub;
  std::unique_ptr<Service> service;
  std::unique_ptr<MqttFront> front;
};

std::string SubscribeSince(int64_t since) {
  return fmt::format(R"({{"id":"s","operation":"subscribe","entity":"things","options":)"
                     R"({{"filters":[{{"column":"status","operator":"eq","value":"shown"}}],)"
                     R"("since_change_seq":{}}}}})",
                     since);
}

// A subscription resumed with since_change_seq while four writers keep committing: every change
// after `since` reaches it exactly once, in change_seq order — replayed from the log, then live
// — with the replay_complete marker between them and seq gap-free (docs/protocol.md "Resuming a
// subscription"). Several rounds, the resume landing at a different point of the load each time.
TEST(ChangeFeedServiceTest, AResumeUnderConcurrentWritersHasNoGapAndNoDuplicateAtTheSeam) {
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    ResumeEnv env;
    auto send = [&](const std::string& client, const std::string& payload) {
      env.Send(client, payload);
    };
    auto& pub = env.pub;
    constexpr int kWriters = 4, kEach = 150, kSince = 20;
    std::atomic<int> sent{0};
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        for (int i = 0; i < kEach; ++i) {
          // Odd rows are "hidden": the subscription's filter leaves them out.
          send("w" + std::to_string(w),
               fmt::format(R"({{"id":"{}","operation":"create","entity":"things",)"
                           R"("data":{{"status":"{}"}}}})",
                           i, i % 2 ? "hidden" : "shown"));
          ++sent;
          if (i % 16 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
      });
    }
    // Resume once the log is past `since` and a share of the load (more each round) is sent.
    const int start_at = kSince + round * 120;
    ASSERT_TRUE(pub.WaitUntil([&](const auto& out, int) {
      int answers = 0;
      for (const auto& m : out) answers += m.msg.topic.find("/response") != std::string::npos;
      return answers >= start_at;
    }));
    send("sub", SubscribeSince(kSince));
    for (auto& t : writers) t.join();
    env.service->Drain();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    env.service->Drain();

    std::string topic;
    std::vector<rapidjson::Document> notes;
    for (const auto& m : pub.sent()) {
      if (m.msg.topic == "spec/sub/response") {
        auto d = Parse(m.msg.payload);
        ASSERT_TRUE(d["success"].GetBool()) << m.msg.payload;
        topic = d["data"]["notify_topic"].GetString();
      } else if (!topic.empty() && m.msg.topic == topic) {
        notes.push_back(Parse(m.msg.payload));
      } else {
        ASSERT_EQ(m.msg.topic.find("/notify/"), std::string::npos)
            << "a notification before the subscribe answer: " << m.msg.payload;
      }
    }
    ASSERT_FALSE(topic.empty());
    // Which change_seqs hold a shown row: every create of an even i. Creates of one writer are
    // numbered in its order, so count the shown ones from the log.
    auto log = env.core->database().ReadChanges(kSince, 100000);
    ASSERT_TRUE(log.ok());
    std::vector<int64_t> expected;
    for (const auto& c : log.value().changes)
      if (c.data.find(R"("shown")") != std::string::npos) expected.push_back(c.change_seq);
    ASSERT_EQ(log.value().newest, kWriters * kEach);

    std::vector<int64_t> got;
    int markers = 0;
    uint64_t seq = 0;
    int64_t reached = -1;  // the marker's change_seq: replayed up to here, live after it
    for (const auto& d : notes) {
      const std::string op = d["operation"].GetString();
      if (op == "replay_complete") {
        ++markers;
        EXPECT_EQ(d["replayed"].GetUint64(), got.size()) << "the marker counts the replay";
        reached = d["change_seq"].GetInt64();
        EXPECT_GE(reached, got.empty() ? int64_t{kSince} : got.back());
        EXPECT_FALSE(d.HasMember("seq"));
        continue;
      }
      ASSERT_EQ(op, "create");
      EXPECT_EQ(SeqOf(d), ++seq) << "seq is gap-free across the seam";
      EXPECT_STREQ(d["data"]["status"].GetString(), "shown");
      got.push_back(d["change_seq"].GetInt64());
      if (markers) {
        EXPECT_GT(got.back(), reached) << "a live change the replay already sent";
      }
    }
    EXPECT_EQ(markers, 1);
    EXPECT_EQ(got, expected) << "every matching change after since, once, in commit order";
  }
}

TEST(ChangeFeedServiceTest, AResumeReplaysLikeLiveIncludingUpdatesThatLeaveTheView) {
  ResumeEnv env;
  auto w = [&](const char* json) {
    auto d = env.Ask("w", json);
    ASSERT_TRUE(d["success"].GetBool()) << json;
  };
  w(R"({"id":"1","operation":"create","entity":"things","data":{"status":"shown"}})");      // 1
  w(R"({"id":"2","operation":"create","entity":"things","data":{"status":"shown"}})");      // 2
  w(R"({"id":"3","operation":"update","entity":"things","data":{"id":1,"status":"no"}})");  // 3
  w(R"({"id":"4","operation":"delete","entity":"things","data":{"id":2}})");                // 4
  w(R"({"id":"5","operation":"create","entity":"things","data":{"status":"no"}})");         // 5
  w(R"({"id":"6","operation":"update","entity":"things","data":{"id":3,"status":"x"}})");   // 6
  auto a = env.Ask("sub", SubscribeSince(0));
  ASSERT_TRUE(a["success"].GetBool());
  const std::string topic = a["data"]["notify_topic"].GetString();
  auto notes = env.On(topic);
  ASSERT_EQ(notes.size(), 5u);
  const char* ops[] = {"create", "create", "update", "delete", "replay_complete"};
  for (size_t i = 0; i < notes.size(); ++i) {
    EXPECT_STREQ(notes[i]["operation"].GetString(), ops[i]);
    EXPECT_EQ(notes[i]["change_seq"].GetInt64(), i < 4 ? int64_t(i + 1) : 6);
  }
  EXPECT_TRUE(notes[2]["match"].IsFalse()) << "the update took row 1 out of the view";
  EXPECT_STREQ(notes[2]["data"]["status"].GetString(), "no");
  EXPECT_EQ(notes[3]["data"]["id"].GetInt64(), 2) << "delete: the deleted row";
  EXPECT_EQ(notes[4]["replayed"].GetUint64(), 4u);
  // Then live, numbered on.
  w(R"({"id":"7","operation":"create","entity":"things","data":{"status":"shown"}})");  // 7
  notes = env.On(topic);
  ASSERT_EQ(notes.size(), 6u);
  EXPECT_EQ(notes[5]["change_seq"].GetInt64(), 7);
  EXPECT_EQ(notes[5]["seq"].GetUint64(), 5u);
}

TEST(ChangeFeedServiceTest, AResumeTheLogCannotServeIsRefusedWithACode) {
  ResumeEnv env;
  auto c = env.Ask("w", R"({"id":"1","operation":"create","entity":"things","data":{}})");
  ASSERT_TRUE(c["success"].GetBool());
  auto ahead = env.Ask("sub", SubscribeSince(2));
  EXPECT_STREQ(ahead["error"]["code"].GetString(), "resync_required");
  EXPECT_EQ(env.core->subscriptions().size(), 0u) << "a refused resume subscribes nothing";
  auto at_newest = env.Ask("sub", SubscribeSince(1));
  ASSERT_TRUE(at_newest["success"].GetBool());
  auto notes = env.On(at_newest["data"]["notify_topic"].GetString());
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_STREQ(notes[0]["operation"].GetString(), "replay_complete");
  EXPECT_EQ(notes[0]["replayed"].GetUint64(), 0u);

  ResumeEnv off("changes: {enabled: false}\n");
  auto refused = off.Ask("sub", SubscribeSince(0));
  EXPECT_STREQ(refused["error"]["code"].GetString(), "invalid_option");
  EXPECT_NE(std::string(refused["error"]["message"].GetString()).find("changes.enabled"),
            std::string::npos);
}

TEST(ChangeFeedServiceTest, AServiceStoppingDoesNotWaitForALongReplay) {
  // 1 000 changes at 50/s would replay for 20 s: stopping the service ends the replay instead.
  auto env = std::make_unique<ResumeEnv>("changes: {replay_rate: 50, replay_burst: 10}\n");
  std::string rows;
  for (int i = 0; i < 1000; ++i) rows += std::string(i ? "," : "") + R"({"status":"shown"})";
  auto c =
      env->Ask("w", R"({"id":"b","operation":"create","entity":"things","data":[)" + rows + "]}");
  ASSERT_TRUE(c["success"].GetBool());
  auto a = env->Ask("sub", SubscribeSince(0));
  ASSERT_TRUE(a["success"].GetBool());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the replay is under way
  const auto t0 = Clock::now();
  env.reset();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
}

}  // namespace
}  // namespace mqttspec::server
