// The SQLite adapter checkpoints its WAL on a background connection, not inside commits.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include "adapters/sqlite_database.h"
#include "registry/model.h"
#include "tests/unit/test_builders.h"

namespace mqttspec::adapters {
namespace {

TEST(SqliteCheckpoint, ABusyWriterGetsBackgroundCheckpointsAndABoundedWal) {
  char tmpl[] = "/tmp/mqttspec-ckpt-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::filesystem::path dir(tmpl);
  const std::string path = (dir / "c.db").string();
  {
    SqliteOptions o;
    o.path = path;
    o.synchronous_full = false;
    o.readers = 1;
    auto db = SqliteDatabase::Open(o);
    ASSERT_TRUE(db.ok()) << db.error().message;
    auto model = registry::Model::Create("public", "blobs",
                                         {testing::AutoId(), testing::MakeField("body")}, "id")
                     .value();
    ASSERT_TRUE(db.value()->Migrate(*model).ok());
    // ~24 MB of records in 6000 commits, ~56 MB of WAL frames with their index and change-log
    // pages: far past 1000 WAL pages (4 KiB each) many times over, and past twice the WAL's
    // bound (below) more than once.
    const std::string text(4000, 'x');
    constexpr uintmax_t kLimit = 16u * 1024 * 1024 + 65536;  // journal_size_limit + a commit
    uintmax_t largest = 0;  // the WAL's largest size during the burst
    for (int i = 0; i < 6000; ++i) {
      auto rows = db.value()->Create(*model, {Record{{1, Value{text}}}});
      ASSERT_TRUE(rows.ok()) << rows.error().message;
      if (i % 50 == 49) largest = std::max(largest, std::filesystem::file_size(path + "-wal"));
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (db.value()->checkpoints() == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_GT(db.value()->checkpoints(), 0u);
    // About one checkpoint per 1000 new WAL frames, not one per commit (each an fsync): the
    // 6000 commits wrote roughly 14 000 frames.
    EXPECT_LT(db.value()->checkpoints(), 120u);
    // During the burst the WAL restarts (a commit overwrites its blocks instead of growing the
    // file) once the writer's own backstop (3 800 frames, within journal_size_limit) has copied
    // every frame. The backstop cannot while a background checkpoint holds the checkpoint lock,
    // so the WAL may outgrow the limit by what the writer appends meanwhile: ~780 frames once in
    // CI (18.75 MB), more on a slower machine. Bounded all the same: well below the 56 MB
    // written, which it would reach if it never restarted.
    EXPECT_LT(largest, 2 * kLimit);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto done = db.value()->checkpoints();
    ASSERT_TRUE(db.value()->Create(*model, {Record{{1, Value{text}}}}).ok());
    // Once the writes slow down, the WAL restarts and journal_size_limit truncates it.
    deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::filesystem::file_size(path + "-wal") > kLimit &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      ASSERT_TRUE(db.value()->Create(*model, {Record{{1, Value{text}}}}).ok());
    }
    EXPECT_LE(std::filesystem::file_size(path + "-wal"), kLimit)
        << "checkpoints before: " << done << ", now: " << db.value()->checkpoints();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mqttspec::adapters
