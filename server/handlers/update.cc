// update: the fields given in data, of the target row (within what hooks' filters allow).
#include "registry/twin.h"
#include "server/handlers/handler.h"

namespace mqttspec::server {

Answer HandleUpdate(Call& c) {
  if (registry::IsTwin(c.model())) return HandleTwinUpdate(c);
  protocol::Request& req = c.req;
  adapters::FilterList scope;
  c.hooks().BindData(&req.records.front());
  c.hooks().BindFilters(&scope);
  if (auto st = c.pipe.Before(HookType::kBeforeUpdate); !st.ok()) return Answer::Fail(st.error());
  auto row = c.db.Update(c.model(), *req.key, req.records.front(), scope, c.tag);
  if (!row.ok()) return Answer::Fail(row.error());
  if (!row.value()) return Answer::Fail(NotFound(c.model(), *req.key));

  protocol::Reply reply;
  reply.model = &c.model();
  reply.columns = AllColumns(c.model());
  std::vector<Row> rows{std::move(*row.value())};
  if (auto st = c.pipe.After(HookType::kAfterUpdate, &rows, &reply.columns, true); !st.ok())
    return Answer::Committed(st.error());
  reply.rows.push_back(rows.empty() ? std::nullopt : std::optional<Row>(std::move(rows.front())));
  return Answer::Of(std::move(reply));
}

}  // namespace mqttspec::server
