#pragma once
// OpenDatabase: the one place a Database is made from the configuration's database section.

#include <memory>
#include <string>

#include "adapters/database.h"
#include "common/error.h"

namespace mqttspec::adapters {

struct DatabaseSpec {
  std::string driver = "sqlite";     // sqlite | postgres
  std::string path = "mqttspec.db";  // sqlite
  bool synchronous_full = true;      // sqlite
  std::string url;                   // postgres
  int pool_size = 8;  // postgres: connections; sqlite: pool_size / 2 readers (at least 1)
  int query_timeout_ms = 5000;
  int group_commit_max_rows = 1000;  // adapters/group_commit.h
  int group_commit_max_ms = 10;
  ChangeLogOptions changes;
};

// Errors: invalid_value for an unknown driver; unavailable when SQLite cannot open its file.
// PostgreSQL connects on demand, so it opens while the server is down.
Result<std::unique_ptr<Database>> OpenDatabase(const DatabaseSpec& spec);

}  // namespace mqttspec::adapters
