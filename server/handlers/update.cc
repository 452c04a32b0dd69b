// update: the fields given in data, of the target row (within what hooks' filters allow).
#include "registry/twin.h"
#include "server/handlers/handler.h"

namespace mqttspec::server {

namespace {

// The answer to an update, once it committed (or failed): the row as After hooks leave it.
Answer Updated(Call& c, Result<std::optional<Row>> row) {
  if (!row.ok()) return Answer::Fail(row.error());
  if (!row.value()) return Answer::Fail(NotFound(c.model(), *c.req.key));
  protocol::Reply reply;
  reply.model = &c.model();
  reply.columns = AllColumns(c.model());
  std::vector<Row> rows{std::move(*row.value())};
  if (auto st = c.pipe.After(HookType::kAfterUpdate, &rows, &reply.columns, true); !st.ok())
    return Answer::Committed(st.error());
  reply.rows.push_back(rows.empty() ? std::nullopt : std::optional<Row>(std::move(rows.front())));
  return Answer::Of(std::move(reply));
}

}  // namespace

void HandleUpdate(Call& c, AnswerDone done) {
  if (registry::IsTwin(c.model())) return done(HandleTwinUpdate(c));
  protocol::Request& req = c.req;
  c.hooks().BindData(&req.records.front());
  c.hooks().BindFilters(&c.scope);
  if (auto st = c.pipe.Before(HookType::kBeforeUpdate); !st.ok())
    return done(Answer::Fail(st.error()));
  c.db.Update(
      c.model(), *req.key, req.records.front(), c.scope, c.tag,
      [&c, done = std::move(done)](Result<std::optional<Row>> row) {
        done(Updated(c, std::move(row)));
      },
      c.suspend);
}

}  // namespace mqttspec::server
