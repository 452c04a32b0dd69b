// fuzz_sql_builder: a JSON input says what to build SQL for —
//   {"model": {…} (a model it describes, fuzz_common.h ModelFromJson) or "schema"/"entity" (one
//    of the fuzz registry's), "options": {…} (read options), "record_id": …, "data": {…}}
// — read through the project's own parsers (ParseOptions, ParseRecord, CoerceJson), so every
// query is one a client could cause. Every statement adapters::SqlBuilder makes of it (Select,
// Count, SelectByKey, Insert, Update, Delete with the filters as scope; CreateTable,
// CreateIndexes, ColumnDefinition), for SQLite and for PostgreSQL, must:
//   - consist of keywords, quoted registry names (the model's fields, table and schema, its
//     indexes' names), placeholders, punctuation, single blanks, and the only literals the builder
//     writes ('\' after ESCAPE, 0 and 1 in "1 = 0" / "1 = 1", "C" after COLLATE on PostgreSQL);
//   - have exactly one placeholder per bound value ($1…$n in order on PostgreSQL) and bind exactly
//     the query's values, in order: filter values (contains / starts_with as escaped patterns),
//     key, record, limit, offset;
//   - stay the same text whatever the values are, so no value can be in the SQL;
//   - on SQLite, prepare against the model's table with as many parameters as bound values.
#include <sqlite3.h>

#include <set>

#include "adapters/sql_builder.h"
#include "fuzz/fuzz_common.h"
#include "protocol/options.h"
#include "protocol/record.h"
#include "registry/coerce.h"

namespace mqttspec::fuzz {
namespace {

using adapters::Dialect;
using adapters::FilterList;
using adapters::Op;
using adapters::Record;
using adapters::SqlBuilder;
using adapters::Statement;

// What a model's statements are built of.
struct Inputs {
  registry::ModelPtr model;
  adapters::ReadQuery query;  // filters also the scope of the by-key statements
  Value key;
  Record insert, update;  // update may be empty (then no UPDATE is built)
};

struct Built {
  std::string name;
  Statement st;
  std::vector<Value> expected;  // the values it must bind, in order
};

std::string EscapeLikeOracle(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// The values a filter list binds, in order (docs/protocol.md §4.1; sql_builder.cc).
void FilterValues(const FilterList& filters, std::vector<Value>* out) {
  for (const adapters::FilterNode& n : filters) {
    if (n.is_group) {
      FilterValues(n.children, out);
      continue;
    }
    const auto& v = n.cond.values;
    const auto* text = v.empty() ? nullptr : std::get_if<std::string>(&v[0]);
    switch (n.cond.op) {
      case Op::kContains:
        out->push_back(Value{"%" + EscapeLikeOracle(text ? *text : "") + "%"});
        break;
      case Op::kStartsWith: out->push_back(Value{EscapeLikeOracle(text ? *text : "") + "%"}); break;
      default: out->insert(out->end(), v.begin(), v.end());
    }
  }
}

std::vector<Built> BuildAll(Dialect dialect, const Inputs& in) {
  const SqlBuilder b(dialect);
  const registry::Model& m = *in.model;
  const FilterList& scope = in.query.filters;
  std::vector<Value> filter_values;
  FilterValues(scope, &filter_values);
  auto plus = [](std::vector<Value> a, const std::vector<Value>& tail) {
    a.insert(a.end(), tail.begin(), tail.end());
    return a;
  };
  auto values = [](const Record& r) {
    std::vector<Value> out;
    for (const auto& a : r) out.push_back(a.value);
    return out;
  };
  std::vector<Built> out;
  out.push_back({"select", b.Select(in.query),
                 plus(filter_values, {Value{in.query.limit}, Value{in.query.offset}})});
  out.push_back({"count", b.Count(in.query), filter_values});
  out.push_back({"select_by_key", b.SelectByKey(m, in.key, in.query.columns, scope),
                 plus({in.key}, filter_values)});
  out.push_back({"insert", b.Insert(m, in.insert), values(in.insert)});
  if (!in.update.empty()) {
    out.push_back({"update", b.Update(m, in.key, in.update, scope),
                   plus(plus(values(in.update), {in.key}), filter_values)});
  }
  out.push_back({"delete", b.Delete(m, in.key, scope), plus({in.key}, filter_values)});
  out.push_back({"create_table", {b.CreateTable(m), {}}, {}});
  for (const std::string& index : b.CreateIndexes(m))
    out.push_back({"create_index", {index, {}}, {}});
  for (const registry::Field& f : m.fields())
    out.push_back({"column_definition", {b.ColumnDefinition(f), {}}, {}});
  return out;
}

// The same inputs with every value replaced by `v` (and limit/offset by other numbers).
Inputs Replaced(Inputs in, const Value& v, int64_t n) {
  auto each = [&](auto& self, FilterList& l) -> void {
    for (auto& node : l) {
      if (node.is_group) self(self, node.children);
      for (Value& x : node.cond.values) x = v;
    }
  };
  each(each, in.query.filters);
  in.key = v;
  for (auto& a : in.insert) a.value = v;
  for (auto& a : in.update) a.value = v;
  in.query.limit = n;
  in.query.offset = n + 1;
  return in;
}

const std::set<std::string, std::less<>>& Keywords() {
  static const std::set<std::string, std::less<>> k = {
      "SELECT",    "FROM",   "WHERE",     "AND",         "OR",       "NOT",     "IN",
      "IS",        "NULL",   "LIKE",      "ILIKE",       "ESCAPE",   "BETWEEN", "ORDER",
      "BY",        "ASC",    "DESC",      "NULLS",       "FIRST",    "LAST",    "LIMIT",
      "OFFSET",    "COUNT",  "INSERT",    "INTO",        "VALUES",   "DEFAULT", "RETURNING",
      "UPDATE",    "SET",    "DELETE",    "COLLATE",     "lower",    "CREATE",  "TABLE",
      "INDEX",     "IF",     "EXISTS",    "ON",          "PRIMARY",  "KEY",     "AUTOINCREMENT",
      "INTEGER",   "BIGINT", "GENERATED", "AS",          "IDENTITY", "REAL",    "DOUBLE",
      "PRECISION", "TEXT",   "BOOLEAN",   "TIMESTAMPTZ", "JSONB",    "UNIQUE"};
  return k;
}

// The names a statement of `m` may quote: the model's and its indexes'.
std::set<std::string, std::less<>> AllowedNames(const registry::Model& m) {
  const std::string sqlite_table =
      m.schema() == "public" ? m.entity() : m.schema() + "_" + m.entity();
  std::set<std::string, std::less<>> names = {m.schema(), m.entity(), sqlite_table};
  for (const registry::Field& f : m.fields()) {
    names.insert(f.name);
    if (f.indexed) names.insert(sqlite_table + "_" + f.name + "_idx");
  }
  return names;
}

// Checks the tokens of `sql`; returns the problem or "". Counts placeholders into *params.
std::string CheckTokens(std::string_view sql, Dialect dialect,
                        const std::set<std::string, std::less<>>& names, size_t* params) {
  auto word_char = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  };
  std::string previous;  // the previous token's text
  *params = 0;
  for (size_t i = 0; i < sql.size();) {
    const char c = sql[i];
    std::string token;
    if (c == ' ') {
      if (i == 0 || i + 1 == sql.size() || sql[i + 1] == ' ') return "a blank at an end or doubled";
      ++i;
      continue;
    }
    if (c == '"' || c == '\'') {  // a quoted identifier or a string literal
      size_t j = i + 1;
      std::string content;
      for (;; ++j) {
        if (j >= sql.size()) return "an unterminated quote";
        if (sql[j] == c) {
          if (j + 1 < sql.size() && sql[j + 1] == c) {
            content += c;
            ++j;
            continue;
          }
          break;
        }
        content += sql[j];
      }
      if (c == '\'') {
        if (content != "\\" || previous != "ESCAPE")
          return "a string literal other than ESCAPE '\\': '" + content + "'";
      } else if (previous == "COLLATE") {
        if (content != "C" || dialect != Dialect::kPostgres) return "a collation other than \"C\"";
      } else if (!names.count(content)) {
        return "a quoted name that is not the model's: \"" + content + "\"";
      }
      token = sql.substr(i, j + 1 - i);
      i = j + 1;
    } else if (c == '?' || c == '$') {
      size_t j = i + 1;
      while (j < sql.size() && sql[j] >= '0' && sql[j] <= '9') ++j;
      token = sql.substr(i, j - i);
      ++*params;
      if (dialect == Dialect::kSqlite && token != "?") return "a placeholder not ? on SQLite";
      if (dialect == Dialect::kPostgres && token != "$" + std::to_string(*params))
        return "placeholder " + token + " where $" + std::to_string(*params) + " is due";
      i = j;
    } else if (c >= '0' && c <= '9') {
      size_t j = i;
      while (j < sql.size() && word_char(sql[j])) ++j;
      token = sql.substr(i, j - i);
      if (token != "0" && token != "1") return "a number literal " + token;
      i = j;
    } else if (word_char(c)) {
      size_t j = i;
      while (j < sql.size() && word_char(sql[j])) ++j;
      token = sql.substr(i, j - i);
      if (!Keywords().count(token)) return "a bare word that is not a keyword: " + token;
      i = j;
    } else {
      static const std::set<std::string, std::less<>> kPunct = {"(",  ")", ",", ".",  "*", "=",
                                                                "<>", "<", ">", "<=", ">="};
      token = sql.substr(i, i + 1 < sql.size() && kPunct.count(sql.substr(i, 2)) ? 2 : 1);
      if (!kPunct.count(token)) return "an unexpected character: " + token;
      i += token.size();
    }
    previous = token;
  }
  return "";
}

// An in-memory SQLite database the statements are prepared in (one for the process).
sqlite3* Sqlite() {
  static sqlite3* db = [] {
    sqlite3* d = nullptr;
    if (sqlite3_open(":memory:", &d) != SQLITE_OK) Fail("sqlite3_open", "");
    return d;
  }();
  return db;
}

std::string Story(const Inputs& in, std::string_view input) {
  std::string out = "input: " + std::string(input.substr(0, 2000)) +
                    "\nmodel: " + Describe(*in.model) + "\nkey: " + Show(in.key);
  if (!in.query.filters.empty()) out += "\nfilters: " + ShowFilters(*in.model, in.query.filters);
  return out;
}

void CheckDialect(Dialect dialect, const Inputs& in, std::string_view input) {
  const std::vector<Built> built = BuildAll(dialect, in);
  const std::vector<Built> as_zero = BuildAll(dialect, Replaced(in, Value{int64_t{0}}, 7));
  const std::vector<Built> as_text = BuildAll(dialect, Replaced(in, Value{std::string("~")}, 9));
  const auto names = AllowedNames(*in.model);
  const char* dialect_name = dialect == Dialect::kSqlite ? "sqlite" : "postgres";
  for (size_t i = 0; i < built.size(); ++i) {
    const Built& b = built[i];
    auto story = [&] {
      return std::string(dialect_name) + " " + b.name + ": " + b.st.sql +
             "\nparams: " + Show(b.st.params) + "\nexpected: " + Show(b.expected) + "\n" +
             Story(in, input);
    };
    size_t placeholders = 0;
    const std::string problem = CheckTokens(b.st.sql, dialect, names, &placeholders);
    FUZZ_CHECK(problem.empty(), problem + "\n" + story());
    FUZZ_CHECK(placeholders == b.st.params.size(), story());
    FUZZ_CHECK(b.st.params == b.expected, story());
    FUZZ_CHECK(as_zero[i].st.sql == b.st.sql && as_text[i].st.sql == b.st.sql,
               "the SQL depends on the values:\n" + as_zero[i].st.sql + "\n" + as_text[i].st.sql +
                   "\n" + story());
  }
  if (dialect != Dialect::kSqlite) return;
  // Prepare every statement against the model's table, created in a transaction rolled back.
  sqlite3* db = Sqlite();
  auto exec = [&](const std::string& sql) {
    return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK;
  };
  FUZZ_CHECK(exec("BEGIN"), sqlite3_errmsg(db));
  bool created = true;
  for (const Built& b : built) {
    if (b.name != "create_table" && b.name != "create_index") continue;
    created = created && exec(b.st.sql);
  }
  const std::string sqlite_table = SqlBuilder(Dialect::kSqlite).TableName(*in.model);
  FUZZ_CHECK(
      created || SqliteCannotHold(*in.model, sqlite_table),
      "SQLite refuses the table: " + std::string(sqlite3_errmsg(db)) + "\n" + Story(in, input));
  for (const Built& b : built) {
    if (!created || b.name == "create_table" || b.name == "create_index" ||
        b.name == "column_definition")
      continue;
    sqlite3_stmt* st = nullptr;
    const int rc =
        sqlite3_prepare_v2(db, b.st.sql.c_str(), static_cast<int>(b.st.sql.size()), &st, nullptr);
    const std::string error = sqlite3_errmsg(db);
    const int n = st ? sqlite3_bind_parameter_count(st) : -1;
    sqlite3_finalize(st);
    FUZZ_CHECK(rc == SQLITE_OK, "SQLite cannot prepare " + b.name + ": " + error + "\n" + b.st.sql +
                                    "\n" + Story(in, input));
    FUZZ_CHECK(static_cast<size_t>(n) == b.st.params.size(), b.st.sql + "\n" + Story(in, input));
  }
  FUZZ_CHECK(exec("ROLLBACK"), sqlite3_errmsg(db));
}

}  // namespace
}  // namespace mqttspec::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mqttspec;        // NOLINT
  using namespace mqttspec::fuzz;  // NOLINT
  rapidjson::Document doc;
  if (!ParseJson(AsText(data, size), doc) || !doc.IsObject()) return -1;
  Inputs in;
  in.model = ModelOf(doc);
  if (!in.model) return -1;
  const registry::Model& m = *in.model;
  in.query.model = in.model;
  if (!protocol::ParseOptions(m, Member(doc, "options"), Limits(), &in.query).ok()) {
    in.query = adapters::ReadQuery{};
    in.query.model = in.model;
    in.query.limit = Limits().max_rows;
    for (size_t i = 0; i < m.fields().size(); ++i) in.query.columns.push_back(static_cast<int>(i));
  }
  in.key = Value{int64_t{1}};
  if (const auto* rid = Member(doc, "record_id"); rid && !rid->IsNull()) {
    if (auto k = registry::CoerceJson(m.primary(), *rid); k.ok()) in.key = std::move(k).value();
  }
  if (const auto* d = Member(doc, "data")) {
    if (auto r = protocol::ParseRecord(m, *d, false, std::nullopt); r.ok())
      in.insert = std::move(r).value();
    if (auto r = protocol::ParseRecord(m, *d, true, in.key); r.ok())
      in.update = std::move(r).value();
  }
  CheckDialect(adapters::Dialect::kSqlite, in, AsText(data, size));
  CheckDialect(adapters::Dialect::kPostgres, in, AsText(data, size));
  return 0;
}
