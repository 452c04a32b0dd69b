// The tests' PostgreSQL server (pg_test_env.h): where it is, and scratch databases on it.

#include "tests/unit/pg_test_env.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <pqxx/pqxx>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace mqttspec::adapters::pgtest {

namespace {

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t a = 0;
  while (a < s.size() && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  return s.substr(a);
}
}  // namespace

PgConfig ReadPgConfig() {
  PgConfig c;
  const char* require = std::getenv("MQTTSPEC_REQUIRE_PG");
  c.required = require && std::string(require) == "1";
  if (const char* url = std::getenv("MQTTSPEC_PG_URL"); url && *url) {
    c.admin_url = Trim(url);
    return c;
  }
  if (const char* file = std::getenv("MQTTSPEC_PG_URL_FILE"); file && *file) {
    c.required = true;  // the test run promised a server
    std::ifstream in(file);
    std::string url;
    if (in) std::getline(in, url);
    url = Trim(url);
    if (url.empty()) {
      c.problem = std::string("MQTTSPEC_PG_URL_FILE=") + file +
                  " is missing or empty: the PostgreSQL test cluster is not running (ctest starts "
                  "it with the pg.start fixture, tests/pg/pgcluster.sh start <dir>)";
      return c;
    }
    c.admin_url = url;
    return c;
  }
  c.problem =
      "no PostgreSQL server for the tests: set MQTTSPEC_PG_URL (admin URL, e.g. "
      "postgresql://mqttspec@127.0.0.1:5432/postgres) or MQTTSPEC_PG_URL_FILE (written by "
      "tests/pg/pgcluster.sh start <dir>)";
  return c;
}

std::string UrlWithDatabase(const std::string& url, const std::string& database) {
  // postgresql://user@host:port/db?params → …/<database>?params
  size_t scheme = url.find("://");
  size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  size_t query = url.find('?', start);
  size_t path = url.find('/', start);
  if (path != std::string::npos && (query == std::string::npos || path < query)) {
    size_t end = query == std::string::npos ? url.size() : query;
    return url.substr(0, path + 1) + database + url.substr(end);
  }
  size_t end = query == std::string::npos ? url.size() : query;
  return url.substr(0, end) + "/" + database + url.substr(end);
}

ScratchDatabase::ScratchDatabase(std::string admin_url) : admin_url_(std::move(admin_url)) {}

ScratchDatabase::~ScratchDatabase() { Drop(); }

bool ScratchDatabase::Create(std::string* error) {
  static std::atomic<int> counter{0};
  std::random_device rd;
  name_ = "mqttspec_t" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
          std::to_string(rd() % 1000000);
  try {
    pqxx::connection admin(admin_url_);
    pqxx::nontransaction tx(admin);
    tx.exec("CREATE DATABASE " + admin.quote_name(name_));
    url_ = UrlWithDatabase(admin_url_, name_);
    return true;
  } catch (const std::exception& e) {
    *error =
        std::string("cannot create a test database on the PostgreSQL server (") + e.what() + ")";
    name_.clear();
    return false;
  }
}

void ScratchDatabase::Drop() {
  if (name_.empty()) return;
  try {
    pqxx::connection admin(admin_url_);
    pqxx::nontransaction tx(admin);
    tx.exec("DROP DATABASE IF EXISTS " + admin.quote_name(name_) + " WITH (FORCE)");
  } catch (const std::exception& e) {
    ADD_FAILURE() << "cannot drop test database " << name_ << ": " << e.what();
  }
  name_.clear();
}

void ScratchDatabase::Exec(const std::string& sql) {
  pqxx::connection c(url_);
  pqxx::nontransaction tx(c);
  tx.exec(sql);
}

std::vector<std::vector<std::string>> ScratchDatabase::Query(const std::string& sql) {
  pqxx::connection c(url_);
  pqxx::nontransaction tx(c);
  std::vector<std::vector<std::string>> out;
  for (const auto& row : tx.exec(sql)) {
    std::vector<std::string> values;
    for (const auto& f : row) values.push_back(f.is_null() ? "<NULL>" : f.c_str());
    out.push_back(std::move(values));
  }
  return out;
}

}  // namespace mqttspec::adapters::pgtest
