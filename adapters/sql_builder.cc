#include "adapters/sql_builder.h"

#include <fmt/format.h>

#include <algorithm>

#include "adapters/change_log.h"

namespace mqttspec::adapters {

using registry::Field;
using registry::FieldType;
using registry::Model;

std::string SqlBuilder::Quote(std::string_view id) const {
  std::string out = "\"";
  for (char c : id) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string SqlBuilder::Table(const Model& m) const {
  if (dialect_ == Dialect::kPostgres) return Quote(m.schema()) + "." + Quote(m.entity());
  return Quote(TableName(m));
}

std::string SqlBuilder::TableName(const Model& m) const {
  if (dialect_ == Dialect::kPostgres) return m.schema() + "." + m.entity();
  // SQLite has no schemas: the schema becomes a prefix, except for the default one.
  if (m.schema() == "public") return m.entity();
  return m.schema() + "_" + m.entity();
}

std::string SqlBuilder::EscapeLike(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

void SqlBuilder::AppendParam(Statement& st, Value v) const {
  st.params.push_back(std::move(v));
  if (dialect_ == Dialect::kPostgres) {
    st.sql += '$';
    st.sql += std::to_string(st.params.size());
  } else {
    st.sql += '?';
  }
}

void SqlBuilder::AppendColumns(const Model& m, const std::vector<int>& columns,
                               std::string& sql) const {
  for (size_t i = 0; i < columns.size(); ++i) {
    if (i) sql += ", ";
    sql += Quote(m.field(static_cast<size_t>(columns[i])).name);
  }
}

void SqlBuilder::AppendAllColumns(const Model& m, std::string& sql) const {
  for (size_t i = 0; i < m.fields().size(); ++i) {
    if (i) sql += ", ";
    sql += Quote(m.field(i).name);
  }
}

std::string SqlBuilder::Ordered(const Field& f) const {
  // Text compares byte-wise on every database: SQLite's BINARY collation, PostgreSQL's "C".
  std::string col = Quote(f.name);
  if (dialect_ == Dialect::kPostgres && f.type == FieldType::kText) col += " COLLATE \"C\"";
  return col;
}

void SqlBuilder::AppendCondition(const Model& m, const Condition& c, Statement& st) const {
  const Field& field = m.field(static_cast<size_t>(c.field));
  const std::string col = Quote(field.name);
  const std::string ordered = Ordered(field);  // for <, <=, >, >=, between
  auto cmp = [&](const char* op, bool range) {
    st.sql += range ? ordered : col;
    st.sql += op;
    AppendParam(st, c.values.at(0));
  };
  auto like = [&](Value pattern, bool insensitive) {
    if (insensitive && dialect_ == Dialect::kPostgres) {
      st.sql += col + " ILIKE ";
      AppendParam(st, std::move(pattern));
    } else if (insensitive) {
      st.sql += "lower(" + col + ") LIKE lower(";
      AppendParam(st, std::move(pattern));
      st.sql += ")";
    } else {
      st.sql += col + " LIKE ";
      AppendParam(st, std::move(pattern));
    }
    st.sql += " ESCAPE '\\'";
  };
  // Pattern operators take text (the parser allows them on text fields only); anything else is
  // matched as its text form rather than thrown on.
  auto text = [&]() -> std::string {
    const Value& v = c.values.at(0);
    if (const auto* s = std::get_if<std::string>(&v)) return *s;
    if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
    return {};
  };
  switch (c.op) {
    case Op::kEq: cmp(" = ", false); break;
    case Op::kNeq: cmp(" <> ", false); break;
    case Op::kGt: cmp(" > ", true); break;
    case Op::kGte: cmp(" >= ", true); break;
    case Op::kLt: cmp(" < ", true); break;
    case Op::kLte: cmp(" <= ", true); break;
    case Op::kLike: like(c.values.at(0), false); break;
    case Op::kIlike: like(c.values.at(0), true); break;
    case Op::kContains: like(Value{"%" + EscapeLike(text()) + "%"}, false); break;
    case Op::kStartsWith: like(Value{EscapeLike(text()) + "%"}, false); break;
    case Op::kIn:
    case Op::kNotIn:
      if (c.values.empty()) {  // x IN () is false, x NOT IN () is true (for non-null x)
        st.sql += c.op == Op::kIn ? "1 = 0" : "(" + col + " IS NOT NULL)";
        break;
      }
      st.sql += col + (c.op == Op::kIn ? " IN (" : " NOT IN (");
      for (size_t i = 0; i < c.values.size(); ++i) {
        if (i) st.sql += ", ";
        AppendParam(st, c.values[i]);
      }
      st.sql += ")";
      break;
    case Op::kBetween:
      st.sql += ordered + " BETWEEN ";
      AppendParam(st, c.values.at(0));
      st.sql += " AND ";
      AppendParam(st, c.values.at(1));
      break;
    case Op::kIsNull: st.sql += col + " IS NULL"; break;
    case Op::kIsNotNull: st.sql += col + " IS NOT NULL"; break;
  }
}

void SqlBuilder::AppendFilterList(const Model& m, const FilterList& filters, Statement& st) const {
  // Each node is parenthesized; joining them with AND/OR in order gives SQL precedence.
  for (size_t i = 0; i < filters.size(); ++i) {
    const FilterNode& n = filters[i];
    if (i) st.sql += n.logic == Logic::kOr ? " OR " : " AND ";
    st.sql += '(';
    if (n.is_group) {
      if (n.children.empty())
        st.sql += "1 = 1";
      else
        AppendFilterList(m, n.children, st);
    } else {
      AppendCondition(m, n.cond, st);
    }
    st.sql += ')';
  }
}

void SqlBuilder::AppendWhere(const Model& m, const FilterList& filters, Statement& st) const {
  if (filters.empty()) return;
  st.sql += " WHERE ";
  AppendFilterList(m, filters, st);
}

Statement SqlBuilder::Select(const ReadQuery& q) const {
  const Model& m = *q.model;
  Statement st;
  st.sql = "SELECT ";
  AppendColumns(m, q.columns, st.sql);
  st.sql += " FROM " + Table(m);
  AppendWhere(m, q.filters, st);
  st.sql += " ORDER BY ";
  if (q.sort.empty()) {
    st.sql += Ordered(m.primary()) + " ASC";
  } else {
    for (size_t i = 0; i < q.sort.size(); ++i) {
      const SortKey& k = q.sort[i];
      if (i) st.sql += ", ";
      st.sql += Ordered(m.field(static_cast<size_t>(k.field)));
      st.sql += k.desc ? " DESC" : " ASC";
      bool nulls_first = k.nulls == Nulls::kFirst || (k.nulls == Nulls::kDefault && k.desc);
      st.sql += nulls_first ? " NULLS FIRST" : " NULLS LAST";
    }
    if (std::none_of(q.sort.begin(), q.sort.end(), [&](const SortKey& k) {
          return static_cast<size_t>(k.field) == m.primary_index();
        })) {
      st.sql += ", " + Ordered(m.primary()) + " ASC";  // stable pages
    }
  }
  st.sql += " LIMIT ";
  AppendParam(st, Value{q.limit});
  st.sql += " OFFSET ";
  AppendParam(st, Value{q.offset});
  return st;
}

Statement SqlBuilder::Count(const ReadQuery& q) const {
  Statement st;
  st.sql = "SELECT COUNT(*) FROM " + Table(*q.model);
  AppendWhere(*q.model, q.filters, st);
  return st;
}

void SqlBuilder::AppendKeyAndScope(const Model& m, const Value& key, const FilterList& scope,
                                   Statement& st) const {
  st.sql += " WHERE " + Quote(m.primary().name) + " = ";
  AppendParam(st, key);
  if (!scope.empty()) {
    st.sql += " AND (";
    AppendFilterList(m, scope, st);
    st.sql += ")";
  }
}

Statement SqlBuilder::SelectByKey(const Model& m, const Value& key, const std::vector<int>& columns,
                                  const FilterList& scope, bool with_change_seq) const {
  Statement st;
  st.sql = "SELECT ";
  AppendColumns(m, columns, st.sql);
  if (with_change_seq) st.sql += ", " + NewestChangeExpr();
  st.sql += " FROM " + Table(m);
  AppendKeyAndScope(m, key, scope, st);
  return st;
}

Statement SqlBuilder::Insert(const Model& m, const Record& r) const {
  Statement st;
  st.sql = "INSERT INTO " + Table(m);
  if (r.empty()) {
    st.sql += " DEFAULT VALUES";
  } else {
    st.sql += " (";
    for (size_t i = 0; i < r.size(); ++i) {
      if (i) st.sql += ", ";
      st.sql += Quote(m.field(static_cast<size_t>(r[i].field)).name);
    }
    st.sql += ") VALUES (";
    for (size_t i = 0; i < r.size(); ++i) {
      if (i) st.sql += ", ";
      AppendParam(st, r[i].value);
    }
    st.sql += ")";
  }
  st.sql += " RETURNING ";
  AppendAllColumns(m, st.sql);
  return st;
}

Statement SqlBuilder::Update(const Model& m, const Value& key, const Record& changes,
                             const FilterList& scope) const {
  Statement st;
  st.sql = "UPDATE " + Table(m) + " SET ";
  for (size_t i = 0; i < changes.size(); ++i) {
    if (i) st.sql += ", ";
    st.sql += Quote(m.field(static_cast<size_t>(changes[i].field)).name) + " = ";
    AppendParam(st, changes[i].value);
  }
  AppendKeyAndScope(m, key, scope, st);
  st.sql += " RETURNING ";
  AppendAllColumns(m, st.sql);
  return st;
}

Statement SqlBuilder::Delete(const Model& m, const Value& key, const FilterList& scope) const {
  Statement st;
  st.sql = "DELETE FROM " + Table(m);
  AppendKeyAndScope(m, key, scope, st);
  st.sql += " RETURNING ";
  AppendAllColumns(m, st.sql);
  return st;
}

std::string SqlBuilder::ColumnDefinition(const Field& f) const {
  std::string def = Quote(f.name) + " ";
  const bool pg = dialect_ == Dialect::kPostgres;
  if (f.primary && f.auto_increment) {
    return def + (pg ? "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
                     : "INTEGER PRIMARY KEY AUTOINCREMENT");
  }
  switch (f.type) {
    case FieldType::kInteger: def += pg ? "BIGINT" : "INTEGER"; break;
    case FieldType::kReal: def += pg ? "DOUBLE PRECISION" : "REAL"; break;
    case FieldType::kText: def += "TEXT"; break;
    case FieldType::kBoolean: def += pg ? "BOOLEAN" : "INTEGER"; break;
    case FieldType::kTimestamp: def += pg ? "TIMESTAMPTZ" : "TEXT"; break;
    case FieldType::kJson: def += pg ? "JSONB" : "TEXT"; break;
  }
  if (f.primary) def += " PRIMARY KEY";
  if (!f.nullable && !f.primary) def += " NOT NULL";
  if (f.unique && !f.primary) def += " UNIQUE";
  return def;
}

std::vector<std::string> SqlBuilder::CreateIndexes(const Model& m) const {
  std::vector<std::string> out;
  const std::string table = m.schema() == "public" ? m.entity() : m.schema() + "_" + m.entity();
  for (const auto& f : m.fields()) {
    if (!f.indexed || f.unique || f.primary) continue;
    // Ordered(): on PostgreSQL a text index in the "C" collation serves our ranges and sorts.
    out.push_back("CREATE INDEX IF NOT EXISTS " + Quote(table + "_" + f.name + "_idx") + " ON " +
                  Table(m) + " (" + Ordered(f) + ")");
  }
  return out;
}

std::string SqlBuilder::CreateTable(const Model& m) const {
  std::string sql = "CREATE TABLE IF NOT EXISTS " + Table(m) + " (";
  for (size_t i = 0; i < m.fields().size(); ++i) {
    if (i) sql += ", ";
    sql += ColumnDefinition(m.field(i));
  }
  sql += ")";
  return sql;
}

std::string SqlBuilder::RequestsTable() const {
  return dialect_ == Dialect::kPostgres ? "\"mqttspec\".\"requests\"" : "\"mqttspec_requests\"";
}

std::vector<std::string> SqlBuilder::CreateRequestsTable() const {
  const bool pg = dialect_ == Dialect::kPostgres;
  std::vector<std::string> out;
  if (pg) out.push_back("CREATE SCHEMA IF NOT EXISTS \"mqttspec\"");
  out.push_back("CREATE TABLE IF NOT EXISTS " + RequestsTable() +
                " (client_id TEXT NOT NULL, request_id TEXT NOT NULL, digest TEXT NOT NULL, "
                "keys TEXT NOT NULL, expires_at BIGINT NOT NULL, "
                "PRIMARY KEY (client_id, request_id))" +
                (pg ? "" : " WITHOUT ROWID"));
  // Records are made in about the order they expire: PostgreSQL's BRIN index fits that and costs
  // next to nothing per insert (a B-tree is one more tree to update and journal for every write).
  out.push_back(pg ? "CREATE INDEX IF NOT EXISTS requests_expiry_brin ON " + RequestsTable() +
                         " USING brin (expires_at)"
                   : "CREATE INDEX IF NOT EXISTS mqttspec_requests_expiry_idx ON " +
                         RequestsTable() + " (expires_at)");
  return out;
}

void SqlBuilder::AppendRecord(Statement& st, const WriteTag& tag, const std::string* keys,
                              const Model* written) const {
  // VALUES with the keys as a parameter, or SELECT … FROM w with the keys w returned.
  const bool from_w = keys == nullptr;
  st.sql += "INSERT INTO " + RequestsTable() + " (client_id, request_id, digest, keys, expires_at) ";
  st.sql += from_w ? "SELECT " : "VALUES (";
  for (const std::string* text : {&tag.client_id, &tag.request_id, &tag.digest}) {
    AppendParam(st, Value{*text});
    st.sql += from_w ? "::text, " : ", ";
  }
  if (from_w)
    st.sql += "json_agg(w." + Quote(written->primary().name) + ")::text";
  else
    AppendParam(st, Value{*keys});
  st.sql += ", ";
  AppendParam(st, Value{tag.expires_at_ms});
  st.sql += from_w ? "::bigint FROM w HAVING count(*) > 0" : ")";
  st.sql +=
      " ON CONFLICT (client_id, request_id) DO UPDATE SET digest = excluded.digest, "
      "keys = excluded.keys, expires_at = excluded.expires_at";
}

Statement SqlBuilder::RecordWrite(const WriteTag& tag, const std::string& keys) const {
  Statement st;
  AppendRecord(st, tag, &keys, nullptr);
  return st;
}

Statement SqlBuilder::WithRecord(Statement write, const Model& m, const WriteTag& tag) const {
  Statement st;
  st.params = std::move(write.params);
  st.sql = "WITH w AS (" + write.sql + "), r AS (";
  AppendRecord(st, tag, nullptr, &m);
  st.sql += ") SELECT * FROM w";
  return st;
}

std::string SqlBuilder::ChangesTable() const {
  return dialect_ == Dialect::kPostgres ? "\"mqttspec\".\"changes\"" : "\"mqttspec_changes\"";
}

std::string SqlBuilder::NewestChangeExpr() const {
  return "(SELECT coalesce(max(change_seq), 0) FROM " + ChangesTable() + ")";
}

std::vector<std::string> SqlBuilder::CreateChangesTable() const {
  const bool pg = dialect_ == Dialect::kPostgres;
  const char* row = pg ? "JSONB" : "TEXT";
  // change_seq is given by the writer (the newest + 1), never by a sequence: PostgreSQL
  // sequences leave gaps when a transaction rolls back, and a gap must mean "trimmed".
  return {"CREATE TABLE IF NOT EXISTS " + ChangesTable() + " (change_seq " +
          (pg ? "BIGINT" : "INTEGER") +
          " PRIMARY KEY, \"schema\" TEXT NOT NULL, entity TEXT NOT NULL, record_id TEXT, "
          "operation TEXT NOT NULL, data " +
          row + " NOT NULL, old_data " + row + ", committed_at BIGINT NOT NULL)"};
}

Statement SqlBuilder::LogChange(const Model& m, Change::Kind kind, const Value& key,
                                std::string data, const std::string* old_data,
                                int64_t now_ms) const {
  Statement st;
  st.sql = "INSERT INTO " + ChangesTable() +
           " (change_seq, \"schema\", entity, record_id, operation, data, old_data, committed_at) "
           "VALUES (NULL, ";
  AppendParam(st, Value{m.schema()});
  st.sql += ", ";
  AppendParam(st, Value{m.entity()});
  st.sql += ", ";
  AppendParam(st, Value{KeyText(key)});
  st.sql += ", ";
  AppendParam(st, Value{std::string(ChangeKindName(kind))});
  st.sql += ", ";
  AppendParam(st, Value{std::move(data)});
  st.sql += ", ";
  AppendParam(st, old_data ? Value{*old_data} : Value{});
  st.sql += ", ";
  AppendParam(st, Value{now_ms});
  st.sql += ")";
  return st;
}

void SqlBuilder::AppendLogged(Statement& st, const Model& m, Change::Kind kind,
                              const std::string* old_data, bool old_from_b, int64_t now_ms,
                              const WriteTag* tag) const {
  st.sql += ", c AS (INSERT INTO " + ChangesTable() +
            " (change_seq, \"schema\", entity, record_id, operation, data, old_data, "
            "committed_at) SELECT " +
            NewestChangeExpr() + " + 1, ";
  AppendParam(st, Value{m.schema()});
  st.sql += "::text, ";
  AppendParam(st, Value{m.entity()});
  st.sql += "::text, w." + Quote(m.primary().name) + "::text, ";
  AppendParam(st, Value{std::string(ChangeKindName(kind))});
  st.sql += "::text, to_jsonb(w), ";
  if (old_from_b) {
    st.sql += "(SELECT to_jsonb(b) FROM b)";
  } else {
    AppendParam(st, old_data ? Value{*old_data} : Value{});
    st.sql += "::jsonb";
  }
  st.sql += ", ";
  AppendParam(st, Value{now_ms});
  st.sql += "::bigint FROM w RETURNING change_seq)";
  if (tag) {
    st.sql += ", r AS (";
    AppendRecord(st, *tag, nullptr, &m);
    st.sql += ")";
  }
}

Statement SqlBuilder::WithLog(Statement write, const Model& m, Change::Kind kind,
                              const std::string* old_data, int64_t now_ms,
                              const WriteTag* tag) const {
  Statement st;
  st.params = std::move(write.params);
  st.sql = "WITH w AS (" + write.sql + ")";
  AppendLogged(st, m, kind, old_data, false, now_ms, tag);
  st.sql += " SELECT w.*, (SELECT change_seq FROM c) FROM w";
  return st;
}

Statement SqlBuilder::UpdateInOne(const Model& m, const Value& key, const Record& changes,
                                  const FilterList& scope, bool log, int64_t now_ms,
                                  const WriteTag* tag) const {
  // b: the row before, locked (FOR UPDATE: a concurrent writer's newer version, re-checked
  // against key and scope); w: the update of that row, joined on its key.
  Statement st;
  st.sql = "WITH b AS (SELECT ";
  AppendAllColumns(m, st.sql);
  st.sql += " FROM " + Table(m);
  AppendKeyAndScope(m, key, scope, st);
  st.sql += " FOR UPDATE), w AS (UPDATE " + Table(m) + " AS u SET ";
  for (size_t i = 0; i < changes.size(); ++i) {
    if (i) st.sql += ", ";
    st.sql += Quote(m.field(static_cast<size_t>(changes[i].field)).name) + " = ";
    AppendParam(st, changes[i].value);
  }
  const std::string pk = Quote(m.primary().name);
  st.sql += " FROM b WHERE u." + pk + " = b." + pk + " RETURNING ";
  for (size_t i = 0; i < m.fields().size(); ++i)
    st.sql += (i ? ", u." : "u.") + Quote(m.field(i).name);
  st.sql += ")";
  if (log) {
    AppendLogged(st, m, Change::Kind::kUpdate, nullptr, true, now_ms, tag);
  } else if (tag) {
    st.sql += ", r AS (";
    AppendRecord(st, *tag, nullptr, &m);
    st.sql += ")";
  }
  st.sql += " SELECT b.*, w.*";
  if (log) st.sql += ", (SELECT change_seq FROM c)";
  st.sql += " FROM b LEFT JOIN w ON true";
  return st;
}

Statement SqlBuilder::BeginSharedWrite() {
  return Statement{fmt::format("SELECT pg_advisory_xact_lock({}), set_config('mqttspec.own_write', "
                               "'on', true), pg_notify('{}', '')",
                               kLogLock, kChangesChannel),
                   {}};
}

std::vector<std::string> SqlBuilder::CreateCaptureFunction() const {
  // READ COMMITTED (PostgreSQL's default): each statement of the function sees what committed
  // before it, so the max read after the lock is the newest change.
  return {
      "CREATE OR REPLACE FUNCTION \"mqttspec\".capture() RETURNS trigger LANGUAGE plpgsql "
      // The service's rights (other writers need no grant on the log), a fixed search path.
      "SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$\n"
      "DECLARE r jsonb; o jsonb;\n"
      "BEGIN\n"
      "  IF current_setting('mqttspec.own_write', true) = 'on' THEN RETURN NULL; END IF;\n"
      "  PERFORM pg_advisory_xact_lock(" +
      std::to_string(kLogLock) +
      ");\n"
      "  IF TG_OP = 'DELETE' THEN r := to_jsonb(OLD); o := NULL;\n"
      "  ELSIF TG_OP = 'UPDATE' THEN r := to_jsonb(NEW); o := to_jsonb(OLD);\n"
      "  ELSE r := to_jsonb(NEW); o := NULL; END IF;\n"
      "  INSERT INTO " +
      ChangesTable() +
      " (change_seq, \"schema\", entity, record_id, operation, data, old_data, "
      "committed_at)\n"
      "    SELECT coalesce(max(change_seq), 0) + 1, TG_ARGV[0], TG_ARGV[1], r ->> TG_ARGV[2],\n"
      "      CASE TG_OP WHEN 'INSERT' THEN 'create' WHEN 'UPDATE' THEN 'update' ELSE 'delete' "
      "END,\n"
      "      r, o, (extract(epoch FROM clock_timestamp()) * 1000)::bigint FROM " +
      ChangesTable() +
      ";\n"
      "  PERFORM pg_notify('" +
      kChangesChannel +
      "', '');\n"
      "  RETURN NULL;\n"
      "END\n"
      "$body$"};
}

std::string SqlBuilder::CreateCaptureTrigger(const Model& m) const {
  // Identifiers ([A-Za-z_][A-Za-z0-9_]*, registry/model.h) need no escaping inside a literal.
  return "CREATE OR REPLACE TRIGGER mqttspec_capture AFTER INSERT OR UPDATE OR DELETE ON " +
         Table(m) + " FOR EACH ROW EXECUTE FUNCTION \"mqttspec\".capture('" + m.schema() + "', '" +
         m.entity() + "', '" + m.primary().name + "')";
}

Statement SqlBuilder::ChangesAfter(int64_t after, int64_t limit) const {
  const bool pg = dialect_ == Dialect::kPostgres;
  Statement st;
  st.sql = std::string("SELECT change_seq, \"schema\", entity, operation, data") +
           (pg ? "::text" : "") + ", old_data" + (pg ? "::text" : "") + " FROM " + ChangesTable() +
           " WHERE change_seq > ";
  AppendParam(st, Value{after});
  st.sql += " ORDER BY change_seq LIMIT ";
  AppendParam(st, Value{limit});
  return st;
}

Statement SqlBuilder::ChangeBounds() const {
  return Statement{
      "SELECT coalesce(min(change_seq), 0), coalesce(max(change_seq), 0) FROM " + ChangesTable(),
      {}};
}

Statement SqlBuilder::NewestChange() const { return Statement{"SELECT " + NewestChangeExpr(), {}}; }

Statement SqlBuilder::TrimChanges(int64_t older_than_ms, int64_t max_rows, int64_t limit) const {
  // Among the oldest `limit` rows (a short scan of the key, whatever the log's size), the newest
  // that is due; everything up to it goes — a prefix, so the log stays gap-free from its oldest.
  Statement st;
  const std::string newest = "(SELECT max(change_seq) FROM " + ChangesTable() + ")";
  st.sql = "DELETE FROM " + ChangesTable() + " WHERE change_seq < " + newest +
           " AND change_seq <= (SELECT max(o.change_seq) FROM (SELECT change_seq, committed_at "
           "FROM " +
           ChangesTable() + " ORDER BY change_seq LIMIT ";
  AppendParam(st, Value{limit});
  st.sql += ") o WHERE o.committed_at < ";
  AppendParam(st, Value{older_than_ms});
  st.sql += " OR o.change_seq <= " + newest + " - ";
  AppendParam(st, Value{max_rows});
  st.sql += ")";
  return st;
}

Statement SqlBuilder::FindWrite(const std::string& client_id, const std::string& request_id,
                                int64_t now_ms) const {
  Statement st;
  st.sql = "SELECT digest, keys FROM " + RequestsTable() + " WHERE client_id = ";
  AppendParam(st, Value{client_id});
  st.sql += " AND request_id = ";
  AppendParam(st, Value{request_id});
  st.sql += " AND expires_at >= ";
  AppendParam(st, Value{now_ms});
  return st;
}

Statement SqlBuilder::ListWrites(int64_t now_ms, const std::string& after_client,
                                 const std::string& after_id, size_t limit) const {
  Statement st;
  st.sql =
      "SELECT client_id, request_id, expires_at FROM " + RequestsTable() + " WHERE expires_at >= ";
  AppendParam(st, Value{now_ms});
  st.sql += " AND (client_id, request_id) > (";
  AppendParam(st, Value{after_client});
  st.sql += ", ";
  AppendParam(st, Value{after_id});
  st.sql += ") ORDER BY client_id, request_id LIMIT ";
  AppendParam(st, Value{static_cast<int64_t>(limit)});
  return st;
}

Statement SqlBuilder::TrimWrites(int64_t now_ms, int64_t limit) const {
  Statement st;
  st.sql = "DELETE FROM " + RequestsTable() +
           " WHERE (client_id, request_id) IN (SELECT client_id, request_id FROM " +
           RequestsTable() + " WHERE expires_at < ";
  AppendParam(st, Value{now_ms});
  st.sql += " LIMIT ";
  AppendParam(st, Value{limit});
  st.sql += ")";
  return st;
}

Status CheckAddableColumn(const registry::Model& m, const registry::Field& f) {
  if (f.nullable && !f.unique && !f.primary) return OkStatus();
  return MakeError(ErrorCode::kInvalidValue,
                   fmt::format("table for {} lacks column '{}', which cannot be added as NOT "
                               "NULL, UNIQUE or key; migrate it by hand",
                               m.qualified_name(), f.name));
}

}  // namespace mqttspec::adapters
