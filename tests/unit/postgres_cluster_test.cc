// Scale-out on PostgreSQL (docs/cluster.md), at the adapter: two PostgresDatabase objects over one
// database stand for two instances. The shared log stays gap-free and in commit order whoever
// writes; capture triggers log other applications' writes (and not the service's twice);
// ListenForChanges wakes on another writer's commit; the ClusterStore's leases, checkpoints and
// adoption. The server comes from MQTTSPEC_PG_URL / MQTTSPEC_PG_URL_FILE (pg_test_env.h).

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "adapters/change_log.h"
#include "adapters/postgres_database.h"
#include "tests/unit/pg_test_env.h"
#include "tests/unit/test_builders.h"
#include "tests/unit/users_fixture.h"

namespace mqttspec::adapters {
namespace {

using namespace mqttspec::testing;  // NOLINT: the shared test builders

// Remembers what it was told, in order.
class Recorder : public ChangeListener {
 public:
  void OnCommitted(std::vector<Change> changes) override {
    std::lock_guard lock(mu_);
    for (const Change& c : changes) seqs_.push_back(c.change_seq);
  }
  std::vector<int64_t> seqs() {
    std::lock_guard lock(mu_);
    return seqs_;
  }

 private:
  std::mutex mu_;
  std::vector<int64_t> seqs_;
};

class PostgresClusterTest : public pgtest::ScratchDatabaseTest {
 protected:
  void SetUp() override {
    pgtest::ScratchDatabaseTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    users_ = Users();
  }

  std::unique_ptr<PostgresDatabase> Open(bool shared, std::vector<std::string> capture = {}) {
    PostgresOptions o;
    o.url = scratch_->url();
    o.pool_size = 2;
    o.changes.shared = shared;
    o.changes.capture = std::move(capture);
    auto db = std::make_unique<PostgresDatabase>(o);
    EXPECT_TRUE(db->Migrate(*users_).ok());
    return db;
  }

  std::vector<LoggedChange> Log(Database& db) {
    auto page = db.ReadChanges(0, 100000);
    EXPECT_TRUE(page.ok());
    return page.ok() ? page.value().changes : std::vector<LoggedChange>{};
  }

  registry::ModelPtr users_;
};

TEST_F(PostgresClusterTest, TwoInstancesNumberTheSharedLogGapFreeInCommitOrder) {
  auto a = Open(true), b = Open(true);
  Recorder told_a, told_b;
  a->SetChangeListener(&told_a);
  b->SetChangeListener(&told_b);
  constexpr int kThreads = 4, kWrites = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      Database& db = t % 2 ? static_cast<Database&>(*a) : *b;
      for (int i = 0; i < kWrites; ++i) {
        auto r = db.Create(*users_, {{{kName, S("w" + std::to_string(t))}}});
        if (!r.ok()) ++failures;
      }
    });
  }
  for (auto& w : writers) w.join();
  // Without the log's lock both instances hand out the same max + 1: key violations.
  EXPECT_EQ(failures.load(), 0);
  auto log = Log(*a);
  ASSERT_EQ(log.size(), static_cast<size_t>(kThreads * kWrites));
  for (size_t i = 0; i < log.size(); ++i) ASSERT_EQ(log[i].change_seq, static_cast<int64_t>(i + 1));
  for (Recorder* r : {&told_a, &told_b}) {
    auto seqs = r->seqs();
    EXPECT_EQ(seqs.size(), static_cast<size_t>(kThreads * kWrites / 2));
    EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end())) << "each told in commit order";
  }
  a->SetChangeListener(nullptr);
  b->SetChangeListener(nullptr);
}

TEST_F(PostgresClusterTest, CaptureTriggerLogsOtherApplicationsWritesOnce) {
  auto db = Open(false, {"public.users"});
  EXPECT_TRUE(db->shares_log()) << "capture implies a shared log";
  ASSERT_TRUE(db->Create(*users_, {{{kName, S("by the service")}}}).ok());
  scratch_->Exec(
      "SET TIME ZONE 'Europe/Berlin'; INSERT INTO public.users (name, age, created_at) VALUES ('by "
      "psql', 7, "
      "'2026-06-01T12:00:00Z')");
  scratch_->Exec("UPDATE public.users SET age = 8 WHERE name = 'by psql'");
  scratch_->Exec("DELETE FROM public.users WHERE name = 'by psql'");
  auto log = Log(*db);
  ASSERT_EQ(log.size(), 4u) << "the service's own write logged once, each psql statement once";
  EXPECT_EQ(log[1].kind, Change::Kind::kCreate);
  EXPECT_EQ(log[2].kind, Change::Kind::kUpdate);
  EXPECT_EQ(log[3].kind, Change::Kind::kDelete);
  for (size_t i = 0; i < log.size(); ++i) {
    EXPECT_EQ(log[i].change_seq, static_cast<int64_t>(i + 1));
    EXPECT_EQ(log[i].schema, "public");
    EXPECT_EQ(log[i].entity, "users");
  }
  auto row = DecodeRow(*users_, log[2].data);
  ASSERT_TRUE(row.ok()) << row.error().message;
  EXPECT_EQ(row.value()[kName], S("by psql"));
  EXPECT_EQ(row.value()[kAge], I(8));
  EXPECT_EQ(row.value()[kCreatedAt], S("2026-06-01T12:00:00.000Z")) << "any session time zone";
  auto before = DecodeRow(*users_, log[2].old_data);
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before.value()[kAge], I(7));
  auto deleted = DecodeRow(*users_, log[3].data);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(deleted.value()[kAge], I(8));
  // Migrating again (another instance starting) keeps one trigger.
  ASSERT_TRUE(db->Migrate(*users_).ok());
  scratch_->Exec("INSERT INTO public.users (name) VALUES ('again')");
  EXPECT_EQ(Log(*db).size(), 5u);
}

TEST_F(PostgresClusterTest, ListenForChangesWakesOnAnotherInstancesCommit) {
  auto a = Open(true), b = Open(true);
  auto signal = a->ListenForChanges();
  ASSERT_NE(signal, nullptr);
  EXPECT_FALSE(signal->Wait(50)) << "nothing happened";  // connects and listens
  ASSERT_TRUE(b->Create(*users_, {{{kName, S("x")}}}).ok());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(signal->Wait(5000));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
  signal->Wake();
  EXPECT_TRUE(signal->Wait(5000));
  EXPECT_EQ(Open(false)->ListenForChanges(), nullptr) << "a log of its own needs no follower";
}

TEST_F(PostgresClusterTest, LeasesCheckpointsAndAdoption) {
  auto db = Open(true);
  auto a = db->OpenClusterStore(), b = db->OpenClusterStore();
  ASSERT_TRUE(a && b);
  auto ha = a->Heartbeat("a", 0b01, 150);
  ASSERT_TRUE(ha.ok()) << ha.error().message;
  EXPECT_EQ(ha.value().partitions, 0b01u);
  EXPECT_TRUE(ha.value().joined);
  ASSERT_TRUE(b->Heartbeat("b", 0b10, 60000).ok());
  StoredSubscription s{"sub-1", "client-1", "public", "users", "[]", 0, 5};
  ASSERT_TRUE(a->Save("a", s).ok());
  ASSERT_TRUE(a->Checkpoint({{"sub-1", 3, 9}}).ok());
  ASSERT_TRUE(a->Checkpoint({{"sub-1", 2, 8}}).ok()) << "an older checkpoint is ignored";
  auto none = b->AdoptExpired("b");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none.value().empty()) << "a's lease runs";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto adopted = b->AdoptExpired("b");
  ASSERT_TRUE(adopted.ok()) << adopted.error().message;
  ASSERT_EQ(adopted.value().size(), 1u);
  EXPECT_EQ(adopted.value()[0].instance_id, "a");
  EXPECT_EQ(adopted.value()[0].partitions, 0b01u);
  ASSERT_EQ(adopted.value()[0].subscriptions.size(), 1u);
  const StoredSubscription& got = adopted.value()[0].subscriptions[0];
  EXPECT_EQ(got.id, "sub-1");
  EXPECT_EQ(got.client_id, "client-1");
  EXPECT_EQ(got.seq, 3);
  EXPECT_EQ(got.change_seq, 9);
  EXPECT_TRUE(b->AdoptExpired("b").value().empty()) << "adopted once";
  auto hb = b->Heartbeat("b", 0b10, 60000);
  ASSERT_TRUE(hb.ok());
  EXPECT_FALSE(hb.value().joined);
  EXPECT_EQ(hb.value().partitions, 0b11u);
  EXPECT_EQ(hb.value().subscriptions, std::vector<std::string>{"sub-1"});
  // a comes back: its partition returns to it; the subscription stays where it is served.
  auto back = a->Heartbeat("a", 0b01, 60000);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back.value().joined) << "a learns that it was taken for dead";
  EXPECT_TRUE(back.value().subscriptions.empty()) << "its subscription is b's now";
  EXPECT_EQ(back.value().partitions, 0b01u);
  EXPECT_EQ(b->Heartbeat("b", 0b10, 60000).value().partitions, 0b10u);
  // Unsubscribed through a: only its owner's client may remove it.
  EXPECT_FALSE(a->Remove("client-2", "sub-1").value());
  EXPECT_TRUE(a->Remove("client-1", "sub-1").value());
  EXPECT_TRUE(b->Heartbeat("b", 0b10, 60000).value().subscriptions.empty());
  // A clean stop ends the lease at once.
  ASSERT_TRUE(b->Leave("b").ok());
  auto left = a->AdoptExpired("a");
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left.value().size(), 1u);
  EXPECT_EQ(left.value()[0].instance_id, "b");
}

}  // namespace
}  // namespace mqttspec::adapters

namespace mqttspec::adapters {
namespace {

TEST_F(PostgresClusterTest, AnApplicationWithoutRightsOnTheLogIsCapturedToo) {
  auto db = Open(false, {"public.users"});
  const std::string role = "app_writer_" + std::to_string(::getpid());
  scratch_->Exec("CREATE ROLE " + role);
  scratch_->Exec("GRANT USAGE ON SCHEMA public TO " + role + "; GRANT INSERT, SELECT ON " +
                 "public.users TO " + role);
  std::string error;
  try {
    scratch_->Exec("SET ROLE " + role + "; INSERT INTO public.users (name) VALUES ('app')");
  } catch (const std::exception& e) {
    error = e.what();
  }
  scratch_->Exec("DROP OWNED BY " + role + "; DROP ROLE " + role);
  EXPECT_EQ(error, "") << "the trigger runs with the service's rights (SECURITY DEFINER)";
  ASSERT_EQ(Log(*db).size(), 1u);
}

}  // namespace
}  // namespace mqttspec::adapters
