// The SQLite adapter checkpoints its WAL on a background connection, not inside commits.
#include <gtest/gtest.h>

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
    // ~8 MB in 2000 commits: far past 1000 WAL pages (4 KiB each) several times over.
    const std::string text(4000, 'x');
    for (int i = 0; i < 2000; ++i) {
      auto rows = db.value()->Create(*model, {Record{{1, Value{text}}}});
      ASSERT_TRUE(rows.ok()) << rows.error().message;
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (db.value()->checkpoints() == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_GT(db.value()->checkpoints(), 0u);
    // About one checkpoint per 1000 new WAL frames, not one per commit (each an fsync): the
    // 2000 commits wrote roughly 4000 frames.
    EXPECT_LT(db.value()->checkpoints(), 40u);
    // During the burst the WAL grows at most to the writer's own backstop (3 800 frames), within
    // journal_size_limit (16 MiB) plus the last transaction: once past its first lap, commits
    // overwrite the file's blocks instead of growing it.
    EXPECT_LT(std::filesystem::file_size(path + "-wal"), 16u * 1024 * 1024 + 65536);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto done = db.value()->checkpoints();
    ASSERT_TRUE(db.value()->Create(*model, {Record{{1, Value{text}}}}).ok());
    deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::filesystem::file_size(path + "-wal") > 16u * 1024 * 1024 + 65536 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      ASSERT_TRUE(db.value()->Create(*model, {Record{{1, Value{text}}}}).ok());
    }
    EXPECT_LE(std::filesystem::file_size(path + "-wal"), 16u * 1024 * 1024 + 65536)
        << "checkpoints before: " << done << ", now: " << db.value()->checkpoints();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mqttspec::adapters
