// PgPipeline on its own (suite PostgresPipelineTest: named so, it runs with the pg fixture):
// statements as one pipeline on the tests' PostgreSQL server (see
// pg_test_env.h; skipped without one) — results in order, a failure stops the pipeline at its
// statement and leaves the connection usable, the prepared statements' cache stays bounded.

#include "adapters/pg_pipeline.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <memory>
#include <pqxx/except>
#include <string>
#include <vector>

#include "tests/unit/pg_test_env.h"

namespace mqttspec::adapters {
namespace {

class PostgresPipelineTest : public pgtest::ScratchDatabaseTest {
 protected:
  void SetUp() override {
    pgtest::ScratchDatabaseTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    scratch_->Exec("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)");
    pipeline_ = std::make_unique<PgPipeline>(scratch_->url(), 5000);
  }
  void TearDown() override {
    pipeline_.reset();
    pgtest::ScratchDatabaseTest::TearDown();
  }
  static Statement Insert(int64_t id, std::string v) {
    return Statement{"INSERT INTO t (id, v) VALUES ($1, $2) RETURNING id, v",
                     {Value{id}, Value{std::move(v)}}};
  }
  static std::string Text(const PgResult& r, int row, int col) {
    return PQgetvalue(r.get(), row, col);
  }

  std::unique_ptr<PgPipeline> pipeline_;
};

TEST_F(PostgresPipelineTest, RunsEveryStatementInOrderAndGivesEachItsResult) {
  std::vector<PgResult> results;
  auto failure = pipeline_->Run({Statement{"BEGIN", {}}, Insert(1, "a"), Insert(2, "b"),
                                 Statement{"SELECT count(*) FROM t", {}}, Statement{"COMMIT", {}}},
                                results);
  ASSERT_FALSE(failure) << failure->message;
  ASSERT_EQ(results.size(), 5u);
  EXPECT_EQ(Text(results[1], 0, 1), "a");
  EXPECT_EQ(Text(results[2], 0, 1), "b");
  EXPECT_EQ(Text(results[3], 0, 0), "2");  // the transaction sees its own inserts
  EXPECT_EQ(scratch_->Query("SELECT count(*) FROM t"),
            (std::vector<std::vector<std::string>>{{"2"}}));
}

TEST_F(PostgresPipelineTest, AFailureStopsThePipelineAtItsStatementAndRollsBack) {
  std::vector<PgResult> results;
  auto failure = pipeline_->Run({Statement{"BEGIN", {}}, Insert(1, "a"), Insert(1, "again"),
                                 Insert(3, "c"), Statement{"COMMIT", {}}},
                                results);
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->index, 2u);
  EXPECT_EQ(failure->sqlstate, "23505");
  EXPECT_TRUE(results[1]);   // ran (and was rolled back)
  EXPECT_FALSE(results[3]);  // skipped
  EXPECT_FALSE(results[4]);
  EXPECT_EQ(scratch_->Query("SELECT count(*) FROM t"),
            (std::vector<std::vector<std::string>>{{"0"}}));
  // The connection is idle again: the next pipeline commits.
  failure =
      pipeline_->Run({Statement{"BEGIN", {}}, Insert(1, "a"), Statement{"COMMIT", {}}}, results);
  ASSERT_FALSE(failure) << failure->message;
  EXPECT_EQ(scratch_->Query("SELECT v FROM t"), (std::vector<std::vector<std::string>>{{"a"}}));
}

// A batch of many statements of few shapes prepares each shape once and keeps it; only more
// shapes than the cache holds empty it.
TEST_F(PostgresPipelineTest, TheCacheOfPreparedStatementsCountsShapesNotStatements) {
  std::vector<Statement> batch = {Statement{"BEGIN", {}}};
  for (int64_t i = 0; i < 2 * static_cast<int64_t>(PgPipeline::kMaxPrepared); ++i)
    batch.push_back(Insert(i, "v"));
  batch.push_back(Statement{"DELETE FROM t", {}});
  batch.push_back(Statement{"COMMIT", {}});
  std::vector<PgResult> results;
  for (int round = 0; round < 3; ++round) {
    auto failure = pipeline_->Run(batch, results);
    ASSERT_FALSE(failure) << failure->message;
  }
  EXPECT_EQ(pipeline_->deallocations(), 0u);
  for (int shape = 0; shape < 300; ++shape) {  // many shapes: the cache is emptied, all still run
    auto failure = pipeline_->Run(
        {Statement{"SELECT $1::int + " + std::to_string(shape), {Value{int64_t{1}}}}}, results);
    ASSERT_FALSE(failure) << failure->message;
    EXPECT_EQ(Text(results[0], 0, 0), std::to_string(shape + 1));
  }
  EXPECT_GE(pipeline_->deallocations(), 1u);
}

TEST_F(PostgresPipelineTest, AServerThatIsNotThereIsABrokenConnectionNotADoubt) {
  PgPipeline nowhere("postgresql://mqttspec@127.0.0.1:1/postgres?connect_timeout=2", 1000);
  std::vector<PgResult> results;
  EXPECT_THROW(nowhere.Run({Statement{"SELECT 1", {}}}, results), pqxx::broken_connection);
}

}  // namespace
}  // namespace mqttspec::adapters
