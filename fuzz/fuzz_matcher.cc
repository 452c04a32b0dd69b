// fuzz_matcher: the in-memory matcher (server/matcher.h) against SQLite, on what a JSON input
// describes:
//   {"model": {…} (a model, fuzz_common.h ModelFromJson; default the registry's public.items),
//    "rows": [{…}, …] (records as a create's data: at most 16),
//    "filters": […] (a filter list as in options.filters)}
// Rows go through protocol::ParseRecord and CompleteRecord, then one by one into an in-memory
// SqliteDatabase (rows the parser or the database refuse are left out); the filters through
// protocol::FilterParser. A read with the filters must return exactly the rows Matches accepts —
// as stored and as coerced (tests/unit/matcher_differential.h, shared with the property test) —
// and count as many as it returns; any difference aborts with the model, rows and filters.
#include "adapters/sqlite_database.h"
#include "fuzz/fuzz_common.h"
#include "protocol/filters.h"
#include "protocol/record.h"
#include "tests/unit/matcher_differential.h"

namespace mqttspec::fuzz {
namespace {

constexpr size_t kMaxRows = 16;

std::string Story(const registry::Model& m, const std::vector<Row>& stored,
                  const std::vector<Row>& coerced, const adapters::FilterList& filters,
                  std::string_view input) {
  std::string out = "input: " + std::string(input.substr(0, 3000)) + "\nmodel: " + Describe(m) +
                    "\nfilters: " + ShowFilters(m, filters);
  for (size_t i = 0; i < stored.size(); ++i)
    out += "\nrow " + std::to_string(i) + ": stored " + Show(stored[i]) + " coerced " +
           Show(coerced[i]);
  return out;
}

int Run(std::string_view input) {
  rapidjson::Document doc;
  if (!ParseJson(input, doc) || !doc.IsObject()) return -1;
  const rapidjson::Value* spec = Member(doc, "model");
  const registry::ModelPtr model = spec ? ModelFromJson(*spec) : Registry().Find("public", "items");
  if (!model) return -1;
  const registry::Model& m = *model;
  const rapidjson::Value* filters_json = Member(doc, "filters");
  if (!filters_json) return -1;
  auto filters = protocol::FilterParser(m, Limits()).List(*filters_json, 0);
  if (!filters.ok()) return -1;

  adapters::SqliteOptions options;
  options.path = ":memory:";
  auto opened = adapters::SqliteDatabase::Open(options);
  FUZZ_CHECK(opened.ok(), opened.error().message);
  adapters::SqliteDatabase& db = *opened.value();
  if (auto st = db.Migrate(m); !st.ok()) {
    FUZZ_CHECK(SqliteCannotHold(m, db.TableName(m)),
               "migrate: " + st.error().message + "\nmodel: " + Describe(m));
    return -1;
  }

  std::vector<Row> stored, coerced;
  if (const rapidjson::Value* rows = Member(doc, "rows"); rows && rows->IsArray()) {
    for (const auto& obj : rows->GetArray()) {
      if (stored.size() == kMaxRows) break;
      auto record = protocol::ParseRecord(m, obj, false, std::nullopt);
      if (!record.ok() || !protocol::CheckRequired(m, record.value()).ok()) continue;
      auto created = db.Create(m, {record.value()});
      if (!created.ok()) {
        // A validated record is refused only for a duplicate key or unique value.
        FUZZ_CHECK(created.error().code == ErrorCode::kConflict,
                   "create: " + created.error().message + "\nmodel: " + Describe(m) +
                       "\ninput: " + std::string(input));
        continue;
      }
      FUZZ_CHECK(created.value().size() == 1, std::string(input));
      Row row = created.value()[0];
      stored.push_back(row);
      for (const adapters::Assignment& a : record.value())
        row[static_cast<size_t>(a.field)] = a.value;
      coerced.push_back(std::move(row));
    }
  }

  auto compared = testing::CompareMatcherWithRead(db, model, filters.value(), stored, coerced);
  FUZZ_CHECK(compared.ok(), "read: " + compared.error().message + "\n" +
                                Story(m, stored, coerced, filters.value(), input));
  const testing::MatcherComparison& c = compared.value();
  std::string disagreements;
  for (const testing::MatchDisagreement& d : c.disagreements) {
    disagreements += "row " + std::to_string(d.row) +
                     ": SQLite returns it: " + std::to_string(d.read) +
                     "; Matches(stored): " + std::to_string(d.matches_stored) +
                     "; Matches(coerced): " + std::to_string(d.matches_coerced) + "\n";
  }
  FUZZ_CHECK(c.disagreements.empty(),
             disagreements + Story(m, stored, coerced, filters.value(), input));
  FUZZ_CHECK(c.total == static_cast<int64_t>(c.read_rows),
             "count " + std::to_string(c.total) + " != rows " + std::to_string(c.read_rows) + "\n" +
                 Story(m, stored, coerced, filters.value(), input));
  return 0;
}

}  // namespace
}  // namespace mqttspec::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return mqttspec::fuzz::Run(mqttspec::fuzz::AsText(data, size));
}
