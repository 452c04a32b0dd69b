// Property: a subscription is notified of exactly the rows a read with the same filters returns.
// Random rows (every field type, NULLs, text with %, _, \ and non-ASCII) go into SQLite through
// SqliteDatabase::Create; random filter lists (every operator, AND/OR, nested and empty groups),
// written as the JSON a client would send and parsed by the server's own filter parser
// (protocol::ParseFilter, so values are coerced by registry::CoerceJson and pattern operators are
// only on text fields), are run both through SqliteDatabase::Read and through server::Matches on
// every row — on the row as stored (read back from SQLite, as the change feed sees it) and on the
// row as coerced before the insert. The two must agree on every row.
//
// Seeds: MQTTSPEC_PROPERTY_SEED=<n> reruns one seed; otherwise a fixed seed and a fresh random one
// run. MQTTSPEC_PROPERTY_CASES=<n> sets filter lists per seed (default 4000). Every failure message
// carries the seed, the filter JSON and the row.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <array>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "adapters/sqlite_database.h"
#include "protocol/filters.h"
#include "registry/coerce.h"
#include "registry/model.h"
#include "server/matcher.h"
#include "tests/unit/matcher_differential.h"
#include "tests/unit/test_builders.h"
#include "tests/unit/value_printer.h"

namespace mqttspec::server {
namespace {

using namespace mqttspec::testing;  // NOLINT: the shared test builders

using adapters::FilterList;
using adapters::Op;
using registry::Field;
using registry::FieldType;
using registry::Model;
using registry::ModelPtr;

constexpr int kRowsPerRound = 24;
constexpr int kCasesPerRound = 100;

enum { kId = 0, kI, kR, kT, kU, kB, kTs, kJ, kFieldCount };

ModelPtr PropsModel() {
  auto m = Model::Create(
      "public", "props",
      {MakeField("id", FieldType::kInteger, false), MakeField("i", FieldType::kInteger),
       MakeField("r", FieldType::kReal), MakeField("t", FieldType::kText),
       MakeField("u", FieldType::kText), MakeField("b", FieldType::kBoolean),
       MakeField("ts", FieldType::kTimestamp), MakeField("j", FieldType::kJson)},
      "id");
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  return m.value();
}

std::string JsonString(std::string_view s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  return {buf.GetString(), buf.GetSize()};
}

// Pieces texts and patterns are made of: ASCII of both cases, the LIKE metacharacters, and
// 2-, 3- and 4-byte UTF-8 (É/é are not folded by SQLite's lower(), ß has no ASCII case).
const std::vector<std::string> kTextPieces = {
    "a", "b", "c",  "A",        "B",        "ab",       "Ab",           " ",
    "%", "_", "\\", "\xC3\xA9", "\xC3\x89", "\xC3\x9F", "\xE6\x97\xA5", "\xF0\x9F\x98\x80",
    "x"};
const std::vector<std::string> kPatternPieces = {"%",
                                                 "%",
                                                 "_",
                                                 "_",
                                                 "\\%",
                                                 "\\_",
                                                 "\\\\",
                                                 "\\a",
                                                 "\\",
                                                 "a",
                                                 "b",
                                                 "A",
                                                 "B",
                                                 "ab",
                                                 " ",
                                                 "\xC3\xA9",
                                                 "\xC3\x89",
                                                 "\xE6\x97\xA5",
                                                 "\xF0\x9F\x98\x80",
                                                 "x"};

// Wire values a client could send for each type (some different spellings of the same value).
const std::vector<std::string> kIntegerJson = {"0",
                                               "1",
                                               "-1",
                                               "2",
                                               "3",
                                               "7",
                                               "-3",
                                               "42",
                                               "\"2\"",
                                               "\"-1\"",
                                               "2.0",
                                               "1e0",
                                               "1099511627776",
                                               "-9007199254740991",
                                               "9223372036854775807",
                                               "-9223372036854775808"};
const std::vector<std::string> kRealJson = {"0",
                                            "-0.0",
                                            "0.0",
                                            "1",
                                            "1.0",
                                            "1.5",
                                            "-2.25",
                                            "2",
                                            "3",
                                            "0.1",
                                            "0.30000000000000004",
                                            "0.3",
                                            "1e10",
                                            "-1e-7",
                                            "\"2.5\"",
                                            "\"1\"",
                                            "1e300",
                                            "9007199254740993",
                                            "-5"};
const std::vector<std::string> kBooleanJson = {"true", "false", "0", "1", "\"true\"", "\"false\""};
const std::vector<std::string> kTimestampJson = {
    "\"2024-01-01T00:00:00Z\"",  "\"2024-01-01T01:00:00+01:00\"",   "\"2024-01-01\"",
    "\"2024-01-01 00:00:00.5\"", "\"2023-12-31T23:59:59.999Z\"",    "\"2024-06-15T12:30:00-0230\"",
    "\"1999-01-01T00:00Z\"",     "\"2024-01-01T00:00:00.123456Z\"", "\"2024-06-15T15:00:00Z\""};
const std::vector<std::string> kJsonJson = {"1",       "1.0",       "\"x\"",
                                            "\"1\"",   "[1,2]",     "[]",
                                            "{}",      "{\"a\":1}", "{\"a\":\"\\u00e9\"}",
                                            "true",    "false",     "0",
                                            "\"%\"",   "\"a_b\"",   "-0.0",
                                            "\"\\\\\""};

struct Stats {
  std::map<std::string, int> ops;
  int groups = 0, empty_groups = 0, or_joins = 0;
  int cases = 0, mixed = 0;  // mixed: some rows match, some don't
};

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(Uniform(0, static_cast<int>(v.size()) - 1))];
  }

  std::string Text() {
    std::string s;
    for (int n = Uniform(0, 5); n > 0; --n) s += Pick(kTextPieces);
    return s;
  }

  // JSON of a non-null value of field `f`, for a row or a filter.
  std::string ValueJson(int f) {
    switch (f) {
      case kId: return std::to_string(Uniform(0, kRowsPerRound + 1));
      case kI: return Pick(kIntegerJson);
      case kR: return Pick(kRealJson);
      case kT:
      case kU: return JsonString(Text());
      case kB: return Pick(kBooleanJson);
      case kTs: return Pick(kTimestampJson);
      case kJ: return Chance(0.3) ? JsonString(Text()) : Pick(kJsonJson);
    }
    return "null";
  }

  // A filter value: half the time one a row of this round has, so filters hit rows often.
  std::string FilterValueJson(int f) {
    if (Chance(0.5) && !row_values_[f].empty()) return Pick(row_values_[f]);
    return ValueJson(f);
  }

  // A LIKE pattern the parser accepts: random pieces, or a row's text with characters replaced by
  // wildcards / case-swapped / escaped; an odd run of trailing backslashes is made even.
  std::string Pattern(int f) {
    std::string p;
    if (Chance(0.5) && !row_texts_[f].empty()) {
      const std::string& t = Pick(row_texts_[f]);
      for (size_t i = 0; i < t.size();) {
        size_t len = 1;
        unsigned char c = static_cast<unsigned char>(t[i]);
        if (c >= 0xF0)
          len = 4;
        else if (c >= 0xE0)
          len = 3;
        else if (c >= 0xC0)
          len = 2;
        std::string ch = t.substr(i, len);
        i += len;
        int r = Uniform(0, 99);
        if (r < 12)
          p += "_";
        else if (r < 22)
          p += "%";
        else if (r < 25)
          continue;  // drop it: usually no match any more
        else if (ch == "%" || ch == "_" || ch == "\\")
          p += (r < 85 ? "\\" : "") + ch;
        else if (r < 45 && ch.size() == 1 && std::isalpha(static_cast<unsigned char>(ch[0])))
          p += static_cast<char>(ch[0] ^ 0x20);  // swap ASCII case (ilike still matches)
        else
          p += ch;
      }
    } else {
      for (int n = Uniform(0, 5); n > 0; --n) p += Pick(kPatternPieces);
    }
    size_t backslashes = 0;
    while (backslashes < p.size() && p[p.size() - 1 - backslashes] == '\\') ++backslashes;
    if (backslashes % 2 == 1) p += "\\";
    return p;
  }

  std::string Condition(Stats& st) {
    static const std::vector<std::string> kAll = {
        "eq",      "neq",     "gt",          "gte",  "lt",    "lte",      "in",         "not_in",
        "between", "is_null", "is_not_null", "like", "ilike", "contains", "starts_with"};
    const int f = Uniform(0, kFieldCount - 1);
    const bool text = f == kT || f == kU;
    static const std::vector<std::string> kPattern = {"like", "ilike", "contains", "starts_with"};
    std::string op = text && Chance(0.5) ? Pick(kPattern) : Pick(kAll);
    while (!text && (op == "like" || op == "ilike" || op == "contains" || op == "starts_with"))
      op = Pick(kAll);
    // As the parser: json fields filter by null-ness only (jsonb and text compare differently).
    if (f == kJ && op != "is_null" && op != "is_not_null")
      op = Chance(0.5) ? "is_null" : "is_not_null";
    ++st.ops[op];
    std::string out = R"({"column":")" + field_names_[f] + R"(","operator":")" + op + "\"";
    if (op == "in" || op == "not_in" || op == "between") {
      int n = op == "between" ? 2 : Uniform(0, 4);
      out += ",\"value\":[";
      for (int i = 0; i < n; ++i) out += (i ? "," : "") + FilterValueJson(f);
      out += "]";
    } else if (op == "like" || op == "ilike") {
      out += ",\"value\":" + JsonString(Pattern(f));
    } else if (op == "contains" || op == "starts_with") {
      std::string needle;
      if (Chance(0.5) && !row_texts_[f].empty()) {
        // Whole UTF-8 characters of a row's text (the server refuses invalid UTF-8).
        const std::string& t = Pick(row_texts_[f]);
        std::vector<size_t> starts;
        for (size_t i = 0; i < t.size(); ++i)
          if ((static_cast<unsigned char>(t[i]) & 0xC0) != 0x80) starts.push_back(i);
        starts.push_back(t.size());
        int a = op == "starts_with" ? 0 : Uniform(0, static_cast<int>(starts.size()) - 1);
        int b = std::min(static_cast<int>(starts.size()) - 1, a + Uniform(0, 3));
        needle = t.substr(starts[static_cast<size_t>(a)],
                          starts[static_cast<size_t>(b)] - starts[static_cast<size_t>(a)]);
      } else {
        needle = Text();
      }
      out += ",\"value\":" + JsonString(needle);
    } else if (op != "is_null" && op != "is_not_null") {
      out += ",\"value\":" + FilterValueJson(f);
    }
    return out + LogicSuffix(st) + "}";
  }

  std::string LogicSuffix(Stats& st) {
    switch (Uniform(0, 5)) {
      case 0: return R"(,"logic_operator":"AND")";
      case 1:
      case 2: ++st.or_joins; return R"(,"logic_operator":"OR")";
      case 3: ++st.or_joins; return R"(,"logic_operator":"or")";
      default: return "";  // AND by default
    }
  }

  std::string Node(int depth, Stats& st) {
    if (depth < 2 && Chance(0.2)) {
      ++st.groups;
      int n = Uniform(0, 3);
      if (n == 0) ++st.empty_groups;
      std::string out = R"({"filters":[)";
      for (int i = 0; i < n; ++i) out += (i ? "," : "") + Node(depth + 1, st);
      return out + "]" + LogicSuffix(st) + "}";
    }
    return Condition(st);
  }

  std::string Filters(Stats& st) {
    std::string out = "[";
    for (int i = 0, n = Uniform(0, 4); i < n; ++i) out += (i ? "," : "") + Node(0, st);
    return out + "]";
  }

  void SetRows(const std::vector<std::vector<std::string>>& json_rows) {
    for (auto& v : row_values_) v.clear();
    for (auto& v : row_texts_) v.clear();
    for (const auto& r : json_rows) {
      for (int f = 0; f < kFieldCount; ++f) {
        if (r[f] == "null") continue;
        row_values_[f].push_back(r[f]);
        if (f == kT || f == kU) {
          rapidjson::Document d;
          d.Parse(r[f].c_str());
          row_texts_[f].emplace_back(d.GetString(), d.GetStringLength());
        }
      }
    }
  }

  std::vector<std::string> field_names_ = {"id", "i", "r", "t", "u", "b", "ts", "j"};

 private:
  std::mt19937_64 rng_;
  std::array<std::vector<std::string>, kFieldCount> row_values_;
  std::array<std::vector<std::string>, kFieldCount> row_texts_;
};

std::string ShowRow(const Row& r) { return Show(r); }

// Runs `cases` random filter lists (in rounds of fresh random rows) with `seed`; returns the
// number of disagreements (each reported).
int RunSeed(uint64_t seed, int cases, Stats& st) {
  const ModelPtr model = PropsModel();
  Generator gen(seed);
  int failures = 0;
  const std::string where = "[seed " + std::to_string(seed) +
                            "; rerun with MQTTSPEC_PROPERTY_SEED=" + std::to_string(seed) + "]";
  for (int done = 0, round = 0; done < cases; ++round) {
    adapters::SqliteOptions opts;
    opts.path = ":memory:";
    auto db_or = adapters::SqliteDatabase::Open(opts);
    if (!db_or.ok()) {
      ADD_FAILURE() << "open: " << db_or.error().message;
      return failures + 1;
    }
    auto db = std::move(db_or).value();
    if (auto s = db->Migrate(*model); !s.ok()) {
      ADD_FAILURE() << "migrate: " << s.error().message;
      return failures + 1;
    }
    // Rows: JSON per field → CoerceJson (what the parser does with a create's data).
    std::vector<std::vector<std::string>> json_rows;
    std::vector<adapters::Record> records;
    std::vector<Row> coerced;
    for (int i = 0; i < kRowsPerRound; ++i) {
      std::vector<std::string> jr(kFieldCount);
      adapters::Record rec;
      Row row(kFieldCount);
      for (int f = 0; f < kFieldCount; ++f) {
        jr[f] = f == kId ? std::to_string(i + 1) : gen.Chance(0.2) ? "null" : gen.ValueJson(f);
        rapidjson::Document d;
        d.Parse(jr[f].c_str());
        auto v = registry::CoerceJson(model->field(static_cast<size_t>(f)), d);
        if (!v.ok()) {
          ADD_FAILURE() << "generator made an invalid value " << jr[f] << " for "
                        << model->field(static_cast<size_t>(f)).name << ": " << v.error().message;
          return failures + 1;
        }
        row[static_cast<size_t>(f)] = v.value();
        rec.push_back({f, std::move(v).value()});
      }
      json_rows.push_back(std::move(jr));
      records.push_back(std::move(rec));
      coerced.push_back(std::move(row));
    }
    auto stored = db->Create(*model, records);
    if (!stored.ok()) {
      ADD_FAILURE() << "create: " << stored.error().message;
      return failures + 1;
    }
    gen.SetRows(json_rows);

    for (int c = 0; c < kCasesPerRound && done < cases; ++c, ++done) {
      Stats local;
      const std::string json = gen.Filters(local);
      for (auto& [k, v] : local.ops) st.ops[k] += v;
      st.groups += local.groups;
      st.empty_groups += local.empty_groups;
      st.or_joins += local.or_joins;
      rapidjson::Document doc;  // as the server parses requests: UTF-8 validated
      doc.Parse<rapidjson::kParseValidateEncodingFlag>(json.c_str(), json.size());
      if (doc.HasParseError() || !doc.IsArray()) {
        ADD_FAILURE() << where << " generator made invalid JSON: " << json;
        return failures + 1;
      }
      FilterList filters;
      protocol::ParseLimits limits;
      bool parsed = true;
      for (const auto& item : doc.GetArray()) {
        auto node = protocol::ParseFilter(*model, item, limits);
        if (!node.ok()) {
          ADD_FAILURE() << where
                        << " the parser refused a filter the generator thinks valid: " << json
                        << ": " << node.error().message;
          parsed = false;
          break;
        }
        filters.push_back(std::move(node).value());
      }
      if (!parsed) return failures + 1;

      auto compared = testing::CompareMatcherWithRead(*db, model, filters, stored.value(), coerced);
      if (!compared.ok()) {
        ADD_FAILURE() << where << " read failed for " << json << ": " << compared.error().message;
        ++failures;
        continue;
      }
      ++st.cases;
      const size_t hits = compared.value().read_rows;
      if (hits > 0 && hits < static_cast<size_t>(kRowsPerRound)) ++st.mixed;
      EXPECT_EQ(compared.value().total, static_cast<int64_t>(hits)) << where << " " << json;

      for (const testing::MatchDisagreement& d : compared.value().disagreements) {
        ++failures;
        if (failures <= 10) {
          const Row& as_stored = stored.value()[d.row];
          ADD_FAILURE() << where << " round " << round << " case " << c << "\n  filters: " << json
                        << "\n  row (stored):  " << ShowRow(as_stored)
                        << "\n  row (coerced): " << ShowRow(coerced[d.row])
                        << "\n  row (json):    " <<
              [&] {
                std::string s;
                for (const auto& v : json_rows[d.row]) s += v + " ";
                return s;
              }()
                        << "\n  SQLite returns it: " << d.read
                        << "; Matches(stored row): " << d.matches_stored
                        << "; Matches(coerced row): " << d.matches_coerced;
        }
      }
    }
  }
  return failures;
}

TEST(MatcherPropertyTest, MatchesAgreesWithSqliteReadOnRandomRowsAndFilters) {
  int cases = 4000;
  if (const char* c = std::getenv("MQTTSPEC_PROPERTY_CASES")) cases = std::max(1, std::atoi(c));
  std::vector<uint64_t> seeds;
  if (const char* s = std::getenv("MQTTSPEC_PROPERTY_SEED")) {
    seeds.push_back(std::strtoull(s, nullptr, 10));
  } else {
    seeds.push_back(20261122);                // fixed: the same cases on every run
    seeds.push_back(std::random_device{}());  // fresh: new cases on every run
  }
  for (uint64_t seed : seeds) {
    Stats st;
    int failures = RunSeed(seed, cases, st);
    std::string summary = "seed " + std::to_string(seed) + ": " + std::to_string(st.cases) +
                          " filter lists x " + std::to_string(kRowsPerRound) + " rows, " +
                          std::to_string(st.mixed) + " with mixed results, " +
                          std::to_string(st.groups) + " groups (" +
                          std::to_string(st.empty_groups) + " empty), " +
                          std::to_string(st.or_joins) + " OR joins; ops:";
    for (const auto& [op, n] : st.ops) summary += " " + op + "=" + std::to_string(n);
    std::printf("%s\n", summary.c_str());
    RecordProperty("seed_" + std::to_string(seed), summary);
    EXPECT_EQ(failures, 0) << failures << " disagreements with seed " << seed
                           << " (rerun: MQTTSPEC_PROPERTY_SEED=" << seed << ")";
    // The generator must actually exercise what it claims to.
    for (const char* op : {"eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in", "between",
                           "is_null", "is_not_null", "like", "ilike", "contains", "starts_with"}) {
      EXPECT_GT(st.ops[op], 0) << "operator " << op << " never generated (seed " << seed << ")";
    }
    if (st.cases >= 1000) {
      EXPECT_GT(st.mixed, st.cases / 5)
          << "too few filter lists split the rows (seed " << seed << ")";
      EXPECT_GT(st.empty_groups, 0);
    }
  }
}

}  // namespace
}  // namespace mqttspec::server
