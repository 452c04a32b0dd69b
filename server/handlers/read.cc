// read: by key (record_id / the primary key in data) or a list with filters, sort and paging.
#include "server/handlers/handler.h"

namespace mqttspec::server {

Answer HandleRead(Call& c) {
  protocol::Request& req = c.req;
  adapters::FilterList scope;  // what hooks add to a by-key read
  c.hooks().BindFilters(req.key ? &scope : &req.query.filters);
  if (auto st = c.pipe.Before(HookType::kBeforeRead); !st.ok()) return Answer::Fail(st.error());

  protocol::Reply reply;
  reply.model = &c.model();
  reply.columns = req.query.columns;
  std::vector<Row> rows;
  if (req.key) {
    int64_t change_seq = 0;
    auto row = c.db.ReadByKey(c.model(), *req.key, req.query.columns, scope, &change_seq);
    if (!row.ok()) return Answer::Fail(row.error());
    if (!row.value()) return Answer::Fail(NotFound(c.model(), *req.key));
    rows.push_back(std::move(*row.value()));
    if (c.db.logs_changes()) reply.change_seq = change_seq;
  } else {
    auto result = c.db.Read(req.query);
    if (!result.ok()) return Answer::Fail(result.error());
    rows = std::move(result.value().rows);
    reply.kind = protocol::Reply::Kind::kList;
    reply.total = result.value().total;
    reply.limit = req.query.limit;
    reply.offset = req.query.offset;
    reply.change_seq = result.value().change_seq;
  }
  if (auto st = c.pipe.After(HookType::kAfterRead, &rows, &req.query.columns, false); !st.ok())
    return Answer::Fail(st.error());
  if (req.key && rows.empty()) return Answer::Fail(NotFound(c.model(), *req.key));  // hidden
  for (Row& r : rows) reply.rows.emplace_back(std::move(r));
  return Answer::Of(std::move(reply));
}

}  // namespace mqttspec::server
