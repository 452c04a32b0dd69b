#pragma once
// The differential check of the in-memory matcher (server/matcher.h) against a database: a read
// with some filters must return exactly the rows server::Matches accepts, so a subscription is
// notified of exactly the rows a read returns. Shared by tests/unit/matcher_property_test.cc
// (random rows and filters) and fuzz/fuzz_matcher.cc (coverage-guided ones). No GoogleTest here:
// the caller reports.

#include <set>
#include <vector>

#include "adapters/database.h"
#include "common/error.h"
#include "common/value.h"
#include "registry/model.h"
#include "server/matcher.h"

namespace mqttspec::testing {

// One row on which the database and the matcher disagree.
struct MatchDisagreement {
  size_t row = 0;                // index into `stored` (and `coerced`)
  bool read = false;             // the database's read returned it
  bool matches_stored = false;   // Matches on the row as the database stored it
  bool matches_coerced = false;  // Matches on the row as coerced before the insert
};

struct MatcherComparison {
  std::vector<MatchDisagreement> disagreements;
  size_t read_rows = 0;  // rows the read returned
  int64_t total = 0;     // the read's total (its COUNT with the same filters)
};

// Reads every row and column of `model` with `filters` through `db` (which must hold exactly the
// rows of `stored`) and compares the primary keys returned with Matches on each row: `stored` as
// the database returned them from the insert (what the change feed sees), `coerced` as the request
// parser produced them (aligned with `stored`; empty to skip). Errors: the read's.
inline Result<MatcherComparison> CompareMatcherWithRead(adapters::Database& db,
                                                        const registry::ModelPtr& model,
                                                        const adapters::FilterList& filters,
                                                        const std::vector<Row>& stored,
                                                        const std::vector<Row>& coerced) {
  adapters::ReadQuery q;
  q.model = model;
  q.filters = filters;
  for (size_t f = 0; f < model->fields().size(); ++f) q.columns.push_back(static_cast<int>(f));
  q.limit = static_cast<int64_t>(stored.size()) + 1;
  q.count_total = true;
  auto read = db.Read(q);
  if (!read.ok()) return read.take_error();
  const size_t pk = model->primary_index();
  std::set<Value> keys;
  for (const Row& r : read.value().rows) keys.insert(r[pk]);
  MatcherComparison out;
  out.read_rows = read.value().rows.size();
  out.total = read.value().total;
  for (size_t i = 0; i < stored.size(); ++i) {
    MatchDisagreement d;
    d.row = i;
    d.read = keys.count(stored[i][pk]) > 0;
    d.matches_stored = server::Matches(*model, filters, stored[i]);
    d.matches_coerced = coerced.empty() ? d.read : server::Matches(*model, filters, coerced[i]);
    if (d.matches_stored != d.read || d.matches_coerced != d.read) out.disagreements.push_back(d);
  }
  return out;
}

}  // namespace mqttspec::testing
