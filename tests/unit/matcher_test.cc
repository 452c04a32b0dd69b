// Matcher tests: LikeMatch edge cases (wildcards, escapes, UTF-8, ASCII-only case folding, a
// trailing backslash, an embedded NUL), each also checked against SQLite's own LIKE asked the way
// the SQLite adapter asks it; and Matches() semantics per operator (NULLs, numeric coercion,
// booleans, in/not_in/between, precedence of AND over OR, nested and empty groups).
// The randomized agreement with SqliteDatabase::Read is in matcher_property_test.cc.
#include "server/matcher.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <optional>
#include <string>
#include <vector>

#include "registry/model.h"
#include "tests/unit/test_builders.h"
#include "tests/unit/value_printer.h"

namespace mqttspec::server {
namespace {

using namespace mqttspec::testing;  // NOLINT: the shared test builders

using adapters::FilterList;
using adapters::FilterNode;
using adapters::Logic;
using adapters::Op;
using registry::Field;
using registry::FieldType;
using registry::Model;
using registry::ModelPtr;

// SQLite's verdict on `text LIKE pattern ESCAPE '\'`, phrased exactly as SqlBuilder phrases it on
// SQLite (PRAGMA case_sensitive_like = ON; ilike as lower(x) LIKE lower(p)). nullopt: SQLite gave
// NULL or an error.
class SqliteLike {
 public:
  SqliteLike() {
    EXPECT_EQ(sqlite3_open(":memory:", &db_), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db_, "PRAGMA case_sensitive_like = ON", nullptr, nullptr, nullptr),
              SQLITE_OK);
    EXPECT_EQ(sqlite3_prepare_v2(db_, "SELECT ?1 LIKE ?2 ESCAPE '\\'", -1, &like_, nullptr),
              SQLITE_OK);
    EXPECT_EQ(sqlite3_prepare_v2(db_, "SELECT lower(?1) LIKE lower(?2) ESCAPE '\\'", -1, &ilike_,
                                 nullptr),
              SQLITE_OK);
  }
  ~SqliteLike() {
    sqlite3_finalize(like_);
    sqlite3_finalize(ilike_);
    sqlite3_close(db_);
  }

  std::optional<bool> Like(std::string_view text, std::string_view pattern, bool ilike) {
    sqlite3_stmt* s = ilike ? ilike_ : like_;
    sqlite3_reset(s);
    sqlite3_bind_text64(s, 1, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    sqlite3_bind_text64(s, 2, pattern.data(), pattern.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    std::optional<bool> out;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
      out = sqlite3_column_int(s, 0) != 0;
    sqlite3_reset(s);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* like_ = nullptr;
  sqlite3_stmt* ilike_ = nullptr;
};

std::string Printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == 0)
      out += "\\0";
    else
      out += static_cast<char>(c);
  }
  return "\"" + out + "\"";
}

// LikeMatch(text, pattern) must be `expected`, and so must SQLite.
void ExpectLike(std::string_view text, std::string_view pattern, bool fold, bool expected) {
  static SqliteLike* sqlite = new SqliteLike();  // one connection for the whole binary
  EXPECT_EQ(LikeMatch(text, pattern, fold), expected)
      << (fold ? "ilike" : "like") << " text " << Printable(text) << " pattern "
      << Printable(pattern);
  EXPECT_EQ(sqlite->Like(text, pattern, fold), std::optional<bool>(expected))
      << "(the test's expectation vs SQLite) " << (fold ? "ilike" : "like") << " text "
      << Printable(text) << " pattern " << Printable(pattern);
}

// LikeMatch agrees with SQLite, whatever SQLite says.
void ExpectLikeAgreesWithSqlite(std::string_view text, std::string_view pattern, bool fold) {
  static SqliteLike* sqlite = new SqliteLike();
  std::optional<bool> want = sqlite->Like(text, pattern, fold);
  ASSERT_TRUE(want.has_value()) << "SQLite gave no verdict for " << Printable(pattern);
  EXPECT_EQ(LikeMatch(text, pattern, fold), *want)
      << (fold ? "ilike" : "like") << " text " << Printable(text) << " pattern "
      << Printable(pattern) << ": SQLite says " << *want;
}

// --- LikeMatch
// -------------------------------------------------------------------------------------

TEST(LikeMatchTest, PercentMatchesAnySequenceIncludingTheEmptyOne) {
  ExpectLike("", "%", false, true);
  ExpectLike("", "%%", false, true);
  ExpectLike("abc", "%", false, true);
  ExpectLike("abc", "a%", false, true);
  ExpectLike("abc", "%c", false, true);
  ExpectLike("abc", "a%c", false, true);
  ExpectLike("ac", "a%c", false, true);
  ExpectLike("abcd", "a%c", false, false);
  ExpectLike("abc", "%b%", false, true);
  ExpectLike("abc", "%x%", false, false);
  ExpectLike("", "", false, true);
  ExpectLike("a", "", false, false);
  ExpectLike("", "a", false, false);
}

TEST(LikeMatchTest, UnderscoreMatchesExactlyOneUtf8Character) {
  ExpectLike("a", "_", false, true);
  ExpectLike("", "_", false, false);
  ExpectLike("ab", "_", false, false);
  ExpectLike("\xC3\xA9", "_", false, true);          // é: 2 bytes, one character
  ExpectLike("\xE6\x97\xA5", "_", false, true);      // 日: 3 bytes
  ExpectLike("\xF0\x9F\x98\x80", "_", false, true);  // 😀: 4 bytes
  ExpectLike("\xC3\xA9", "__", false, false);
  ExpectLike(
      "a\xE6\x97\xA5"
      "c",
      "a_c", false, true);
  ExpectLike(
      "a\xE6\x97\xA5"
      "c",
      "a__c", false, false);
  ExpectLike("\xF0\x9F\x98\x80\xF0\x9F\x98\x80x", "%_x", false, true);
  ExpectLike("\xF0\x9F\x98\x80x", "_%", false, true);
  ExpectLike("caf\xC3\xA9", "caf_", false, true);
  ExpectLike("caf\xC3\xA9", "ca%_", false, true);
  ExpectLike("caf\xC3\xA9", "%\xC3\xA9", false, true);
}

TEST(LikeMatchTest, EscapedWildcardsAndBackslashesMatchOnlyThemselves) {
  ExpectLike("%", "\\%", false, true);
  ExpectLike("a", "\\%", false, false);
  ExpectLike("", "\\%", false, false);
  ExpectLike("_", "\\_", false, true);
  ExpectLike("a", "\\_", false, false);
  ExpectLike("\\", "\\\\", false, true);
  ExpectLike("a", "\\\\", false, false);
  ExpectLike("50%", "%\\%", false, true);
  ExpectLike("50", "%\\%", false, false);
  ExpectLike("a_b", "a\\_b", false, true);
  ExpectLike("axb", "a\\_b", false, false);
  ExpectLike("C:\\dir", "C:\\\\%", false, true);
  ExpectLike("%_\\", "\\%\\_\\\\", false, true);
}

TEST(LikeMatchTest, AnEscapeBeforeAnOrdinaryCharacterMatchesThatCharacter) {
  ExpectLike("a", "\\a", false, true);
  ExpectLike("b", "\\a", false, false);
  ExpectLike("\xC3\xA9", "\\\xC3\xA9", false, true);  // an escaped multi-byte character
  ExpectLike("A", "\\a", true, true);                 // and ilike still folds it
}

TEST(LikeMatchTest, BacktrackingFindsLaterOccurrences) {
  ExpectLike("aaab", "%aab", false, true);
  ExpectLike("xabyab", "%ab%ab", false, true);
  ExpectLike("xabyaXb", "%ab%ab", false, false);
  ExpectLike("abcabcabd", "%abd", false, true);
  ExpectLike("abcbc", "a%bc%bc", false, true);
  ExpectLike("mississippi", "%iss%ipp%", false, true);
  ExpectLike("mississippi", "%iss%iss%ipp%", false, true);
  ExpectLike("mississippi", "%iss%iss%iss%", false, false);
  ExpectLike("\xC3\xA9\xC3\xA9x\xC3\xA9y", "%\xC3\xA9y", false, true);
  ExpectLike("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "%a%a%a%a%a%a%a%b", false, false);
}

TEST(LikeMatchTest, LikeIsCaseSensitiveAndIlikeFoldsAsciiLettersOnly) {
  ExpectLike("Alice", "alice", false, false);
  ExpectLike("Alice", "alice", true, true);
  ExpectLike("ALICE", "a%E", true, true);
  ExpectLike("alice", "A%", false, false);
  ExpectLike("\xC3\x89t\xC3\xA9", "\xC3\xA9t\xC3\xA9", true,
             false);  // É is not folded (SQLite lower())
  ExpectLike("\xC3\x89t\xC3\xA9", "\xC3\x89T%", true, true);
  ExpectLike("STRASSE",
             "stra\xC3\x9F"
             "e",
             true, false);            // no Unicode case mapping
  ExpectLike("[", "{", true, false);  // only A-Z fold, not their neighbours
  ExpectLike("@", "`", true, false);
}

TEST(LikeMatchTest, NonAsciiLiteralsMatchByteForByte) {
  ExpectLike("caf\xC3\xA9", "%\xC3\xA9%", false, true);
  ExpectLike("cafe", "%\xC3\xA9%", false, false);
  ExpectLike("\xE6\x97\xA5\xE6\x9C\xAC", "\xE6\x97\xA5%", false, true);
  ExpectLike("\xE6\x97\xA5\xE6\x9C\xAC", "%\xE6\x9C\xAC", false, true);
  ExpectLike("\xE6\x97\xA5\xE6\x9C\xAC", "\xE6\x9C\xAC%", false, false);
}

TEST(LikeMatchTest, TrailingBackslashMatchesNothingAsInSqlite) {
  // The request parser refuses such patterns; LikeMatch promises SQL LIKE semantics anyway (it is
  // exported and documented as "SQL LIKE with ESCAPE '\'"), and SQLite matches nothing here.
  ExpectLike("a\\", "a\\", false, false);
  ExpectLike("\\", "\\", false, false);
  ExpectLike("a", "a\\", false, false);
  ExpectLike("ab\\", "%\\", false, false);
}

TEST(LikeMatchTest, HandPickedEdgeCasesAgreeWithSqlite) {
  const std::vector<std::string> texts = {"",
                                          "a",
                                          "A",
                                          "ab",
                                          "aB",
                                          "%",
                                          "_",
                                          "\\",
                                          "a%b",
                                          "a_b",
                                          "a\\b",
                                          "\xC3\xA9",
                                          "\xC3\x89",
                                          "\xE6\x97\xA5",
                                          "\xF0\x9F\x98\x80",
                                          "x\xF0\x9F\x98\x80y",
                                          "%%",
                                          "__",
                                          "\\\\",
                                          "abcabc"};
  const std::vector<std::string> patterns = {
      "",          "%",     "_",     "__",       "a",        "A",
      "a%",        "%a",    "%b%",   "_b",       "a_",       "\\%",
      "\\_",       "\\\\",  "\\a",   "a\\%b",    "a\\_b",    "a\\\\b",
      "%\\%%",     "%\\_%", "_\\\\", "\xC3\xA9", "\xC3\x89", "_%_",
      "%_%_%",     "x_y",   "x%y",   "%c",       "abc%abc",  "%\xF0\x9F\x98\x80%",
      "\\\xC3\xA9"};
  for (const auto& t : texts) {
    for (const auto& p : patterns) {
      ExpectLikeAgreesWithSqlite(t, p, false);
      ExpectLikeAgreesWithSqlite(t, p, true);
    }
  }
}

TEST(LikeMatchTest, TextWithAnEmbeddedNulAgreesWithSqlite) {
  // JSON "\u0000" reaches a text field as a NUL byte; SQLite's LIKE sees the text only up to it.
  const std::string nul_text("a\0b", 3);
  ExpectLikeAgreesWithSqlite(nul_text, "a%b", false);
  ExpectLikeAgreesWithSqlite(nul_text, "a%", false);
  ExpectLikeAgreesWithSqlite(nul_text, "%b", true);
}

TEST(LikeMatchTest, ContainsAndStartsWithOnTextWithAnEmbeddedNulAgreeWithSqlite) {
  // SqlBuilder runs contains / starts_with as LIKE '%<escaped>%' / '<escaped>%' (case-sensitive).
  SqliteLike sqlite;
  Field id, t;
  id.name = "id";
  id.type = FieldType::kInteger;
  t.name = "t";
  auto model = Model::Create("public", "n", {id, t}, "id");
  ASSERT_TRUE(model.ok());
  const std::string text("a\0b", 3);
  const Row row{Value{int64_t{1}}, Value{text}};
  struct Case {
    Op op;
    std::string needle, pattern;
  };
  for (const Case& c : {Case{Op::kContains, "b", "%b%"}, Case{Op::kStartsWith, "a", "a%"}}) {
    FilterNode n;
    n.cond.field = 1;
    n.cond.op = c.op;
    n.cond.values = {Value{c.needle}};
    auto want = sqlite.Like(text, c.pattern, false);
    ASSERT_TRUE(want.has_value());
    EXPECT_EQ(Matches(*model.value(), FilterList{n}, row), *want)
        << adapters::OpName(c.op) << " '" << c.needle << "' on \"a\\0b\": SQLite says " << *want;
  }
}

// --- Matches -----------------------------------------------------------------------------------

enum { kId = 0, kN, kR, kT, kB, kTs, kJ };

ModelPtr Things() {
  auto m = Model::Create("public", "things",
                         {MakeField("id", FieldType::kInteger), MakeField("n", FieldType::kInteger),
                          MakeField("r", FieldType::kReal), MakeField("t", FieldType::kText),
                          MakeField("b", FieldType::kBoolean),
                          MakeField("ts", FieldType::kTimestamp), MakeField("j", FieldType::kJson)},
                         "id");
  EXPECT_TRUE(m.ok());
  return m.value();
}

class MatchesTest : public ::testing::Test {
 protected:
  bool M(const FilterList& f, const Row& row) { return Matches(*model_, f, row); }
  bool M1(FilterNode n, const Row& row) { return Matches(*model_, FilterList{std::move(n)}, row); }
  Row RowWith(int field, Value v) {
    Row r{I(1), kNull, kNull, kNull, kNull, kNull, kNull};
    r[static_cast<size_t>(field)] = std::move(v);
    return r;
  }
  ModelPtr model_ = Things();
};

TEST_F(MatchesTest, NullComparesFalseWithEveryOperatorButIsNull) {
  const Row row = RowWith(kT, kNull);
  struct Case {
    Op op;
    std::vector<Value> values;
  };
  const std::vector<Case> cases = {
      {Op::kEq, {S("x")}},      {Op::kNeq, {S("x")}},       {Op::kGt, {S("x")}},
      {Op::kGte, {S("x")}},     {Op::kLt, {S("x")}},        {Op::kLte, {S("x")}},
      {Op::kLike, {S("%")}},    {Op::kIlike, {S("%")}},     {Op::kIn, {S("x"), S("y")}},
      {Op::kNotIn, {S("x")}},   {Op::kNotIn, {}},           {Op::kBetween, {S(""), S("~")}},
      {Op::kContains, {S("")}}, {Op::kStartsWith, {S("")}},
  };
  for (const auto& c : cases) {
    EXPECT_FALSE(M1(Cond(kT, c.op, c.values), row)) << adapters::OpName(c.op) << " on NULL";
  }
  EXPECT_TRUE(M1(Cond(kT, Op::kIsNull, {}), row));
  EXPECT_FALSE(M1(Cond(kT, Op::kIsNotNull, {}), row));
  EXPECT_FALSE(M1(Cond(kT, Op::kIsNull, {}), RowWith(kT, S(""))));  // '' is not NULL
  EXPECT_TRUE(M1(Cond(kT, Op::kIsNotNull, {}), RowWith(kT, S(""))));
}

TEST_F(MatchesTest, ComparisonOperatorsOnIntegers) {
  const Row row = RowWith(kN, I(5));
  EXPECT_TRUE(M1(Cond(kN, Op::kEq, {I(5)}), row));
  EXPECT_FALSE(M1(Cond(kN, Op::kEq, {I(6)}), row));
  EXPECT_TRUE(M1(Cond(kN, Op::kNeq, {I(6)}), row));
  EXPECT_FALSE(M1(Cond(kN, Op::kNeq, {I(5)}), row));
  EXPECT_TRUE(M1(Cond(kN, Op::kGt, {I(4)}), row));
  EXPECT_FALSE(M1(Cond(kN, Op::kGt, {I(5)}), row));
  EXPECT_TRUE(M1(Cond(kN, Op::kGte, {I(5)}), row));
  EXPECT_TRUE(M1(Cond(kN, Op::kLt, {I(6)}), row));
  EXPECT_FALSE(M1(Cond(kN, Op::kLt, {I(5)}), row));
  EXPECT_TRUE(M1(Cond(kN, Op::kLte, {I(5)}), row));
  EXPECT_TRUE(M1(Cond(kN, Op::kLt, {I(-9223372036854775807LL)}), RowWith(kN, I(INT64_MIN))));
  EXPECT_FALSE(M1(Cond(kN, Op::kEq, {I(INT64_MAX - 1)}), RowWith(kN, I(INT64_MAX))))
      << "integers compare exactly, not through double";
}

TEST_F(MatchesTest, IntegersAndRealsCompareNumerically) {
  EXPECT_TRUE(M1(Cond(kR, Op::kEq, {D(1.0)}), RowWith(kR, I(1))));
  EXPECT_TRUE(M1(Cond(kR, Op::kEq, {D(1.0)}), RowWith(kR, D(1.0))));
  EXPECT_TRUE(M1(Cond(kR, Op::kEq, {D(-0.0)}), RowWith(kR, D(0.0))));
  EXPECT_TRUE(M1(Cond(kR, Op::kLt, {D(2.5)}), RowWith(kR, I(2))));
  EXPECT_TRUE(M1(Cond(kR, Op::kGt, {D(1.5)}), RowWith(kR, I(2))));
  EXPECT_FALSE(M1(Cond(kR, Op::kEq, {D(1.5)}), RowWith(kR, I(1))));
  EXPECT_TRUE(M1(Cond(kR, Op::kBetween, {D(0.1), D(0.3)}), RowWith(kR, D(0.2))));
  EXPECT_TRUE(M1(Cond(kR, Op::kIn, {D(3), D(1)}), RowWith(kR, D(1.0))));
}

TEST_F(MatchesTest, BooleansCompareAsZeroAndOne) {
  // A boolean read back from SQLite is the integer 0/1; a filter value coerced from JSON is a bool.
  EXPECT_TRUE(M1(Cond(kB, Op::kEq, {B(true)}), RowWith(kB, I(1))));
  EXPECT_TRUE(M1(Cond(kB, Op::kEq, {B(true)}), RowWith(kB, B(true))));
  EXPECT_TRUE(M1(Cond(kB, Op::kEq, {B(false)}), RowWith(kB, I(0))));
  EXPECT_FALSE(M1(Cond(kB, Op::kEq, {B(false)}), RowWith(kB, I(1))));
  EXPECT_TRUE(M1(Cond(kB, Op::kNeq, {B(false)}), RowWith(kB, I(1))));
  EXPECT_TRUE(M1(Cond(kB, Op::kGt, {B(false)}), RowWith(kB, B(true))));
  EXPECT_TRUE(M1(Cond(kB, Op::kIn, {B(false), B(true)}), RowWith(kB, I(0))));
  EXPECT_TRUE(M1(Cond(kB, Op::kNotIn, {B(true)}), RowWith(kB, I(0))));
}

TEST_F(MatchesTest, TextTimestampAndJsonCompareBytewise) {
  EXPECT_TRUE(M1(Cond(kT, Op::kLt, {S("a")}), RowWith(kT, S("B"))));  // 'B' (0x42) < 'a' (0x61)
  EXPECT_TRUE(M1(Cond(kT, Op::kGt, {S("z")}), RowWith(kT, S("\xC3\xA9"))));  // é > z
  EXPECT_TRUE(M1(Cond(kT, Op::kLt, {S("ab")}), RowWith(kT, S("a"))));
  EXPECT_FALSE(M1(Cond(kT, Op::kEq, {S("a")}), RowWith(kT, S("A"))));
  EXPECT_TRUE(
      M1(Cond(kTs, Op::kBetween, {S("2024-01-01T00:00:00.000Z"), S("2024-12-31T23:59:59.999Z")}),
         RowWith(kTs, S("2024-06-15T12:00:00.000Z"))));
  EXPECT_FALSE(M1(Cond(kTs, Op::kGt, {S("2024-06-15T12:00:00.001Z")}),
                  RowWith(kTs, S("2024-06-15T12:00:00.000Z"))));
  EXPECT_TRUE(M1(Cond(kJ, Op::kEq, {S("{\"a\":1}")}), RowWith(kJ, S("{\"a\":1}"))));
  EXPECT_FALSE(M1(Cond(kJ, Op::kEq, {S("{\"a\":1}")}), RowWith(kJ, S("{\"a\": 1}"))));
}

TEST_F(MatchesTest, InNotInAndBetween) {
  const Row row = RowWith(kN, I(3));
  EXPECT_TRUE(M1(Cond(kN, Op::kIn, {I(1), I(3)}), row));
  EXPECT_FALSE(M1(Cond(kN, Op::kIn, {I(1), I(2)}), row));
  EXPECT_FALSE(M1(Cond(kN, Op::kIn, {}), row)) << "x IN () is false";
  EXPECT_TRUE(M1(Cond(kN, Op::kNotIn, {}), row)) << "x NOT IN () is true for non-NULL x";
  EXPECT_TRUE(M1(Cond(kN, Op::kNotIn, {I(1), I(2)}), row));
  EXPECT_FALSE(M1(Cond(kN, Op::kNotIn, {I(3)}), row));
  EXPECT_TRUE(M1(Cond(kN, Op::kBetween, {I(3), I(3)}), row)) << "between is inclusive";
  EXPECT_TRUE(M1(Cond(kN, Op::kBetween, {I(1), I(5)}), row));
  EXPECT_FALSE(M1(Cond(kN, Op::kBetween, {I(5), I(1)}), row)) << "reversed bounds match nothing";
  EXPECT_FALSE(M1(Cond(kN, Op::kBetween, {I(4), I(9)}), row));
}

TEST_F(MatchesTest, PatternOperatorsOnText) {
  const Row row = RowWith(kT, S("50% off_now"));
  EXPECT_TRUE(M1(Cond(kT, Op::kLike, {S("50%")}), row));
  EXPECT_FALSE(M1(Cond(kT, Op::kLike, {S("50% OFF%")}), row));
  EXPECT_TRUE(M1(Cond(kT, Op::kIlike, {S("50% OFF%")}), row));
  EXPECT_TRUE(M1(Cond(kT, Op::kContains, {S("% off_")}), row));
  EXPECT_FALSE(M1(Cond(kT, Op::kContains, {S("%x")}), row)) << "contains is literal";
  EXPECT_FALSE(M1(Cond(kT, Op::kContains, {S("_n_w")}), row)) << "'_' is literal in contains";
  EXPECT_TRUE(M1(Cond(kT, Op::kStartsWith, {S("50%")}), row));
  EXPECT_FALSE(M1(Cond(kT, Op::kStartsWith, {S("5_%")}), row)) << "starts_with is literal";
  EXPECT_FALSE(M1(Cond(kT, Op::kStartsWith, {S("50% OFF")}), row)) << "and case-sensitive";
  EXPECT_TRUE(M1(Cond(kT, Op::kContains, {S("")}), row));
  EXPECT_TRUE(M1(Cond(kT, Op::kStartsWith, {S("")}), row));
}

TEST_F(MatchesTest, AndBindsTighterThanOr) {
  // a OR b AND c  ==  a OR (b AND c)
  const Row row{I(1), I(1), D(0), S("x"), B(false), kNull, kNull};  // a true, b false, c false
  FilterList f{Cond(kN, Op::kEq, {I(1)}), Cond(kT, Op::kEq, {S("y")}, Logic::kOr),
               Cond(kB, Op::kEq, {B(true)})};
  EXPECT_TRUE(M(f, row));
  // a AND b OR c  ==  (a AND b) OR c: a true, b false, c true → true
  FilterList g{Cond(kN, Op::kEq, {I(1)}), Cond(kT, Op::kEq, {S("y")}),
               Cond(kT, Op::kEq, {S("x")}, Logic::kOr)};
  EXPECT_TRUE(M(g, row));
  // a AND b OR c AND d with b and d false → false
  FilterList h{Cond(kN, Op::kEq, {I(1)}), Cond(kT, Op::kEq, {S("y")}),
               Cond(kT, Op::kEq, {S("x")}, Logic::kOr), Cond(kB, Op::kEq, {B(true)})};
  EXPECT_FALSE(M(h, row));
  // The first node's logic joins it to nothing.
  FilterList first_or{Cond(kN, Op::kEq, {I(2)}, Logic::kOr), Cond(kT, Op::kEq, {S("x")})};
  EXPECT_FALSE(M(first_or, row));
  EXPECT_TRUE(M(FilterList{}, row)) << "no filters match every row";
}

TEST_F(MatchesTest, GroupsNestAndAnEmptyGroupIsTrue) {
  const Row row{I(1), I(1), D(0), S("x"), B(false), kNull, kNull};
  // n = 1 AND (t = 'y' OR b = false)
  FilterList f{Cond(kN, Op::kEq, {I(1)}),
               Group({Cond(kT, Op::kEq, {S("y")}), Cond(kB, Op::kEq, {B(false)}, Logic::kOr)})};
  EXPECT_TRUE(M(f, row));
  // n = 2 OR (t = 'x' AND (ts IS NULL AND (j IS NOT NULL OR r = 0)))
  FilterList g{
      Cond(kN, Op::kEq, {I(2)}),
      Group({Cond(kT, Op::kEq, {S("x")}),
             Group({Cond(kTs, Op::kIsNull, {}),
                    Group({Cond(kJ, Op::kIsNotNull, {}), Cond(kR, Op::kEq, {D(0)}, Logic::kOr)})})},
            Logic::kOr)};
  EXPECT_TRUE(M(g, row));
  g[1].children[1].children[1].children[1].cond.values = {D(1)};
  EXPECT_FALSE(M(g, row));
  EXPECT_TRUE(M(FilterList{Group({})}, row)) << "an empty group is 1 = 1";
  EXPECT_FALSE(M(FilterList{Group({}), Cond(kN, Op::kEq, {I(2)})}, row));
  EXPECT_TRUE(M(FilterList{Cond(kN, Op::kEq, {I(2)}), Group({}, Logic::kOr)}, row));
}

}  // namespace
}  // namespace mqttspec::server
