// create: one record or a batch (one transaction, all or nothing).
#include "protocol/record.h"
#include "registry/twin.h"
#include "server/handlers/handler.h"

namespace mqttspec::server {

namespace {

// The answer to a create, once it committed (or failed): the rows as After hooks leave them.
Answer Created(Call& c, Result<std::vector<Row>> created) {
  if (!created.ok()) return Answer::Fail(created.error());
  protocol::Request& req = c.req;
  protocol::Reply reply;
  reply.kind = protocol::Reply::Kind::kCreated;
  reply.model = &c.model();
  reply.columns = AllColumns(c.model());
  reply.batch = req.batch;
  for (size_t i = 0; i < created.value().size(); ++i) {
    std::vector<Row> one{std::move(created.value()[i])};
    c.hooks().BindData(&req.records[i]);
    if (auto st = c.pipe.After(HookType::kAfterCreate, &one, &reply.columns, true); !st.ok())
      return Answer::Committed(st.error());
    reply.rows.push_back(one.empty() ? std::nullopt : std::optional<Row>(std::move(one.front())));
  }
  return Answer::Of(std::move(reply));
}

}  // namespace

void HandleCreate(Call& c, AnswerDone done) {
  if (registry::IsTwin(c.model())) return done(RefuseTwinCreate());
  protocol::Request& req = c.req;
  for (auto& record : req.records) {  // Before hooks see one record at a time
    c.hooks().BindData(&record);
    if (auto st = c.pipe.Before(HookType::kBeforeCreate); !st.ok())
      return done(Answer::Fail(st.error()));
    // Required fields are checked after the hooks, which may supply them.
    if (auto st = protocol::CheckRequired(c.model(), record); !st.ok())
      return done(Answer::Fail(st.error()));
  }
  c.db.Create(
      c.model(), req.records, c.tag,
      [&c, done = std::move(done)](Result<std::vector<Row>> created) {
        done(Created(c, std::move(created)));
      },
      c.suspend);
}

}  // namespace mqttspec::server
