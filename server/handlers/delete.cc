// delete: the target row (within what hooks' filters allow).
#include "server/handlers/handler.h"

namespace mqttspec::server {

namespace {

// The answer to a delete, once it committed (or failed), after the After hooks saw the row.
Answer Deleted(Call& c, Result<std::optional<Row>> row) {
  if (!row.ok()) return Answer::Fail(row.error());
  if (!row.value()) return Answer::Fail(NotFound(c.model(), *c.req.key));
  const std::vector<int> all = AllColumns(c.model());
  std::vector<Row> rows{std::move(*row.value())};
  if (auto st = c.pipe.After(HookType::kAfterDelete, &rows, &all, true); !st.ok())
    return Answer::Committed(st.error());
  protocol::Reply reply;
  reply.kind = protocol::Reply::Kind::kDeleted;
  reply.model = &c.model();
  reply.key = c.req.key;
  return Answer::Of(std::move(reply));
}

}  // namespace

void HandleDelete(Call& c, AnswerDone done) {
  c.hooks().BindFilters(&c.scope);
  if (auto st = c.pipe.Before(HookType::kBeforeDelete); !st.ok())
    return done(Answer::Fail(st.error()));
  c.db.Delete(
      c.model(), *c.req.key, c.scope, c.tag,
      [&c, done = std::move(done)](Result<std::optional<Row>> row) {
        done(Deleted(c, std::move(row)));
      },
      c.suspend);
}

}  // namespace mqttspec::server
