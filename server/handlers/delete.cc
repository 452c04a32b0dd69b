// delete: the target row (within what hooks' filters allow).
#include "server/handlers/handler.h"

namespace mqttspec::server {

Answer HandleDelete(Call& c) {
  protocol::Request& req = c.req;
  adapters::FilterList scope;
  c.hooks().BindFilters(&scope);
  if (auto st = c.pipe.Before(HookType::kBeforeDelete); !st.ok()) return Answer::Fail(st.error());
  auto row = c.db.Delete(c.model(), *req.key, scope, c.tag);
  if (!row.ok()) return Answer::Fail(row.error());
  if (!row.value()) return Answer::Fail(NotFound(c.model(), *req.key));

  const std::vector<int> all = AllColumns(c.model());
  std::vector<Row> rows{std::move(*row.value())};
  if (auto st = c.pipe.After(HookType::kAfterDelete, &rows, &all, true); !st.ok())
    return Answer::Committed(st.error());
  protocol::Reply reply;
  reply.kind = protocol::Reply::Kind::kDeleted;
  reply.model = &c.model();
  reply.key = req.key;
  return Answer::Of(std::move(reply));
}

}  // namespace mqttspec::server
