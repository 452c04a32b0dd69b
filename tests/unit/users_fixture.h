#pragma once
// The users model the adapter tests share (every field type, nullable and not, a unique email),
// and its five seeded rows.

#include <vector>

#include "adapters/query.h"
#include "tests/unit/test_builders.h"

namespace mqttspec::testing {

using adapters::Record;
using registry::FieldType;
using registry::ModelPtr;

enum UserField { kId = 0, kName, kEmail, kAge, kScore, kActive, kCreatedAt, kNote, kMeta };
constexpr size_t kUserFieldCount = 9;

inline ModelPtr Users() {
  return MustModel(
      "public", "users",
      {AutoId(), MakeField("name", FieldType::kText, /*nullable=*/false),
       MakeField("email", FieldType::kText, true, /*unique=*/true),
       MakeField("age", FieldType::kInteger), MakeField("score", FieldType::kReal),
       MakeField("active", FieldType::kBoolean), MakeField("created_at", FieldType::kTimestamp),
       MakeField("note", FieldType::kText), MakeField("meta", FieldType::kJson)},
      "id");
}

// The five seeded users (ids 1..5):
//   id name    email               age   score active created_at                 note
//   1  Alice   alice@example.com   30    1.5   true   2026-01-01T00:00:00.000Z  "50% off"
//   2  alice   alice2@example.com  25    2.0   false  2026-02-01T00:00:00.000Z  "5000 off"
//   3  Bob     NULL                NULL  NULL  true   NULL                      "a_b"
//   4  Carol   carol@example.com   40    -3.25 NULL   2025-12-31T23:59:59.999Z  "axb"
//   5  dave    dave@example.com    35    10.0  false  2026-03-01T00:00:00.000Z  NULL
inline std::vector<Record> SeedRecords() {
  return {
      {{kName, S("Alice")},
       {kEmail, S("alice@example.com")},
       {kAge, I(30)},
       {kScore, D(1.5)},
       {kActive, B(true)},
       {kCreatedAt, S("2026-01-01T00:00:00.000Z")},
       {kNote, S("50% off")}},
      {{kName, S("alice")},
       {kEmail, S("alice2@example.com")},
       {kAge, I(25)},
       {kScore, D(2.0)},
       {kActive, B(false)},
       {kCreatedAt, S("2026-02-01T00:00:00.000Z")},
       {kNote, S("5000 off")}},
      {{kName, S("Bob")}, {kEmail, kNull}, {kActive, B(true)}, {kNote, S("a_b")}},
      {{kName, S("Carol")},
       {kEmail, S("carol@example.com")},
       {kAge, I(40)},
       {kScore, D(-3.25)},
       {kCreatedAt, S("2025-12-31T23:59:59.999Z")},
       {kNote, S("axb")}},
      {{kName, S("dave")},
       {kEmail, S("dave@example.com")},
       {kAge, I(35)},
       {kScore, D(10.0)},
       {kActive, B(false)},
       {kCreatedAt, S("2026-03-01T00:00:00.000Z")}},
  };
}

}  // namespace mqttspec::testing
