#pragma once
// The tests' PostgreSQL server (the pg fixture's cluster, see tests/CMakeLists.txt) and scratch
// databases on it; used by database_conformance_test.cc and postgres_database_test.cc.
//
// The server comes from MQTTSPEC_PG_URL (an admin URL, e.g.
// postgresql://mqttspec@127.0.0.1:5432/postgres) or MQTTSPEC_PG_URL_FILE (a file holding one,
// written by tests/pg/pgcluster.sh start). With neither set the PostgreSQL tests are skipped,
// unless MQTTSPEC_REQUIRE_PG=1; with MQTTSPEC_PG_URL_FILE set, or MQTTSPEC_REQUIRE_PG=1, a missing
// server is a failure.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace mqttspec::adapters::pgtest {

// Where the tests' PostgreSQL server is.
struct PgConfig {
  std::string admin_url;  // empty: no server
  bool required = false;  // a missing server fails the test instead of skipping it
  std::string problem;    // why there is no server
};
PgConfig ReadPgConfig();

// `url` with its database replaced by `database`.
std::string UrlWithDatabase(const std::string& url, const std::string& database);

// A database of its own on the test server; dropped (WITH FORCE) when destroyed.
class ScratchDatabase {
 public:
  explicit ScratchDatabase(std::string admin_url);
  ~ScratchDatabase();
  ScratchDatabase(const ScratchDatabase&) = delete;
  ScratchDatabase& operator=(const ScratchDatabase&) = delete;

  bool Create(std::string* error);  // false: *error says why
  void Drop();
  const std::string& name() const { return name_; }
  const std::string& url() const { return url_; }
  const std::string& admin_url() const { return admin_url_; }
  // Plain SQL on the scratch database, bypassing the adapter; both throw on errors.
  void Exec(const std::string& sql);
  std::vector<std::vector<std::string>> Query(const std::string& sql);  // NULL as "<NULL>"

 private:
  std::string admin_url_, name_, url_;
};

}  // namespace mqttspec::adapters::pgtest

// Skips (or fails, when a server was promised) without a PostgreSQL server; otherwise sets *cfg.
#define NEED_POSTGRES(cfg)                              \
  do {                                                  \
    cfg = ::mqttspec::adapters::pgtest::ReadPgConfig(); \
    if (cfg.admin_url.empty()) {                        \
      if (cfg.required) FAIL() << cfg.problem;          \
      GTEST_SKIP() << cfg.problem;                      \
    }                                                   \
  } while (0)

namespace mqttspec::adapters::pgtest {

// A test with a scratch database of its own on the tests' server (skipped without one). A
// fixture that adds to SetUp calls this one first and returns if it skipped or failed.
class ScratchDatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NEED_POSTGRES(cfg_);
    scratch_ = std::make_unique<ScratchDatabase>(cfg_.admin_url);
    std::string error;
    ASSERT_TRUE(scratch_->Create(&error)) << error;
  }
  void TearDown() override { scratch_.reset(); }

  PgConfig cfg_;
  std::unique_ptr<ScratchDatabase> scratch_;
};

}  // namespace mqttspec::adapters::pgtest
