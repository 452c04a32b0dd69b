// replay: the answer to a write that was applied before — recorded with its request id by an
// earlier run of the service (adapters/database.h WriteTag) — and arrives again (a QoS 1
// redelivery after a crash). Nothing is written and no hook of the write runs again (an audit
// trail stays single); the rows are read as this client would read them now (BeforeRead and
// AfterRead hooks, the Call's context is a read's) and answered in the write's shape. A row that
// is gone, or that a read would not show, is null; a delete answers its key.
#include "server/handlers/handler.h"

namespace mqttspec::server {

Answer HandleReplay(Call& c, const std::vector<Value>& keys) {
  protocol::Request& req = c.req;
  protocol::Reply reply;
  reply.model = &c.model();
  if (req.op == protocol::Operation::kDelete) {
    reply.kind = protocol::Reply::Kind::kDeleted;
    reply.key = req.key;
    return Answer::Of(std::move(reply));
  }
  reply.kind = req.op == protocol::Operation::kCreate ? protocol::Reply::Kind::kCreated
                                                      : protocol::Reply::Kind::kOne;
  reply.batch = req.batch;
  reply.columns = AllColumns(c.model());
  for (const Value& key : keys) {
    req.key = key;
    adapters::FilterList scope;
    c.hooks().BindFilters(&scope);
    std::vector<Row> rows;
    if (c.pipe.Before(HookType::kBeforeRead).ok()) {
      auto row = c.db.ReadByKey(c.model(), key, reply.columns, scope);
      if (!row.ok()) return Answer::Fail(row.error());
      if (row.value()) rows.push_back(std::move(*row.value()));
    }
    if (!rows.empty() && !c.pipe.After(HookType::kAfterRead, &rows, &reply.columns, false).ok())
      rows.clear();
    reply.rows.push_back(rows.empty() ? std::nullopt : std::optional<Row>(std::move(rows.front())));
  }
  if (reply.rows.empty()) reply.rows.emplace_back();
  return Answer::Of(std::move(reply));
}

}  // namespace mqttspec::server
