// PostgresClusterStore: adapters/cluster_store.h on PostgreSQL, on a connection of its own.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <pqxx/pqxx>

#include "adapters/postgres_database.h"
#include "adapters/sql_builder.h"

namespace mqttspec::adapters {
namespace {

// The database's clock, in Unix milliseconds: leases compare against one clock.
constexpr const char* kNowMs = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

// The status of a Result whose value does not matter.
template <typename T>
Status StatusOf(Result<T> r) {
  if (!r.ok()) return r.take_error();
  return OkStatus();
}

class PostgresClusterStore : public ClusterStore {
 public:
  explicit PostgresClusterStore(std::string url) : url_(std::move(url)) {}

  Result<Holding> Heartbeat(const std::string& me, uint64_t own, int64_t lease_ms) override {
    return Run<Holding>([&](pqxx::work& tx) {
      const std::string until = fmt::format("{} + {}", kNowMs, lease_ms);
      pqxx::result r = tx.exec_params("UPDATE \"mqttspec\".instances SET lease_until = " + until +
                                          " WHERE instance_id = $1 RETURNING partitions",
                                      me);
      const bool joined = r.empty();
      if (joined) {  // joining: take our own partitions back from whoever adopted them
        tx.exec_params(
            "UPDATE \"mqttspec\".instances SET partitions = partitions & ~$1::bigint WHERE "
            "partitions & $1::bigint <> 0",
            static_cast<int64_t>(own));
        r = tx.exec_params(
            "INSERT INTO \"mqttspec\".instances (instance_id, partitions, "
            "lease_until) VALUES ($1, $2, " +
                until + ") RETURNING partitions",
            me, static_cast<int64_t>(own));
      }
      Holding h;
      h.joined = joined;
      h.partitions = static_cast<uint64_t>(r[0][0].as<int64_t>());
      for (const auto& row :
           tx.exec_params("SELECT subscription_id FROM \"mqttspec\".subscriptions "
                          "WHERE instance_id = $1",
                          me))
        h.subscriptions.push_back(row[0].c_str());
      return h;
    });
  }

  Status Save(const std::string& me, const StoredSubscription& s) override {
    return StatusOf(Run<bool>([&](pqxx::work& tx) {
      tx.exec_params(
          "INSERT INTO \"mqttspec\".subscriptions (subscription_id, instance_id, "
          "client_id, \"schema\", entity, filters, seq, change_seq) VALUES ($1, $2, $3, $4, "
          "$5, $6, $7, $8) ON CONFLICT (subscription_id) DO UPDATE SET instance_id = "
          "EXCLUDED.instance_id, seq = EXCLUDED.seq, change_seq = EXCLUDED.change_seq",
          s.id, me, s.client_id, s.schema, s.entity, s.filters, s.seq, s.change_seq);
      return true;
    }));
  }

  Result<bool> Remove(const std::string& client_id, const std::string& id) override {
    return Run<bool>([&](pqxx::work& tx) {
      return tx.exec_params(
                   "DELETE FROM \"mqttspec\".subscriptions WHERE subscription_id = $1 "
                   "AND client_id = $2",
                   id, client_id)
                 .affected_rows() > 0;
    });
  }

  Status Checkpoint(const std::vector<SubscriptionCheckpoint>& cps) override {
    if (cps.empty()) return OkStatus();
    return StatusOf(Run<bool>([&](pqxx::work& tx) {
      for (const auto& c : cps) {
        tx.exec_params(
            "UPDATE \"mqttspec\".subscriptions SET seq = $2, change_seq = $3 WHERE "
            "subscription_id = $1 AND change_seq <= $3",
            c.id, c.seq, c.change_seq);
      }
      return true;
    }));
  }

  Result<std::vector<AdoptedInstance>> AdoptExpired(const std::string& me) override {
    return Run<std::vector<AdoptedInstance>>([&](pqxx::work& tx) {
      std::vector<AdoptedInstance> out;
      pqxx::result dead = tx.exec_params(
          std::string("SELECT instance_id, partitions FROM \"mqttspec\".instances WHERE "
                      "lease_until < ") +
              kNowMs + " AND instance_id <> $1 FOR UPDATE SKIP LOCKED",
          me);
      for (const auto& d : dead) {
        AdoptedInstance a;
        a.instance_id = d[0].c_str();
        a.partitions = static_cast<uint64_t>(d[1].as<int64_t>());
        tx.exec_params("DELETE FROM \"mqttspec\".instances WHERE instance_id = $1", a.instance_id);
        tx.exec_params(
            "UPDATE \"mqttspec\".instances SET partitions = partitions | $2 WHERE instance_id = $1",
            me, static_cast<int64_t>(a.partitions));
        pqxx::result subs = tx.exec_params(
            "UPDATE \"mqttspec\".subscriptions SET instance_id = $1 WHERE instance_id = $2 "
            "RETURNING subscription_id, client_id, \"schema\", entity, filters, seq, change_seq",
            me, a.instance_id);
        for (const auto& r : subs) {
          StoredSubscription s;
          s.id = r[0].c_str();
          s.client_id = r[1].c_str();
          s.schema = r[2].c_str();
          s.entity = r[3].c_str();
          s.filters = r[4].c_str();
          s.seq = r[5].as<int64_t>();
          s.change_seq = r[6].as<int64_t>();
          a.subscriptions.push_back(std::move(s));
        }
        out.push_back(std::move(a));
      }
      return out;
    });
  }

  Status Leave(const std::string& me) override {
    return StatusOf(Run<bool>([&](pqxx::work& tx) {
      tx.exec_params("UPDATE \"mqttspec\".instances SET lease_until = 0 WHERE instance_id = $1",
                     me);
      return true;
    }));
  }

 private:
  // One transaction on the store's connection (made, with the tables, on first use; made again
  // after a loss). Errors: unavailable, internal.
  template <typename T, typename F>
  Result<T> Run(F&& work) {
    std::lock_guard lock(mu_);
    for (int attempt = 0;; ++attempt) {
      try {
        Connect();
        pqxx::work tx(*conn_);
        T out = work(tx);
        tx.commit();
        return out;
      } catch (const pqxx::broken_connection& e) {
        conn_.reset();
        if (attempt == 0) continue;
        return MakeError(ErrorCode::kUnavailable, "database unavailable");
      } catch (const std::exception& e) {
        spdlog::error("cluster state: {}", e.what());
        return MakeError(ErrorCode::kInternal, "cluster state: the database refused a statement");
      }
    }
  }

  void Connect() {
    if (conn_ && conn_->is_open()) return;
    conn_ = std::make_unique<pqxx::connection>(url_);
    pqxx::work tx(*conn_);
    tx.exec(fmt::format("SELECT pg_advisory_xact_lock({})", SqlBuilder::kMigrateLock));
    tx.exec("CREATE SCHEMA IF NOT EXISTS \"mqttspec\"");
    tx.exec(
        "CREATE TABLE IF NOT EXISTS \"mqttspec\".instances (instance_id TEXT PRIMARY KEY, "
        "partitions BIGINT NOT NULL, lease_until BIGINT NOT NULL)");
    tx.exec(
        "CREATE TABLE IF NOT EXISTS \"mqttspec\".subscriptions (subscription_id TEXT PRIMARY "
        "KEY, instance_id TEXT NOT NULL, client_id TEXT NOT NULL, \"schema\" TEXT NOT NULL, "
        "entity TEXT NOT NULL, filters TEXT NOT NULL, seq BIGINT NOT NULL, change_seq BIGINT "
        "NOT NULL)");
    tx.exec(
        "CREATE INDEX IF NOT EXISTS subscriptions_instance ON \"mqttspec\".subscriptions "
        "(instance_id)");
    tx.commit();
  }

  std::string url_;
  std::mutex mu_;  // guards conn_
  std::unique_ptr<pqxx::connection> conn_;
};

}  // namespace

std::unique_ptr<ClusterStore> PostgresDatabase::OpenClusterStore() {
  return std::make_unique<PostgresClusterStore>(options_.url);
}

}  // namespace mqttspec::adapters
