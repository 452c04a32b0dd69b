// create: one record or a batch (one transaction, all or nothing).
#include "protocol/record.h"
#include "registry/twin.h"
#include "server/handlers/handler.h"

namespace mqttspec::server {

Answer HandleCreate(Call& c) {
  if (registry::IsTwin(c.model())) return RefuseTwinCreate();
  protocol::Request& req = c.req;
  for (auto& record : req.records) {  // Before hooks see one record at a time
    c.hooks().BindData(&record);
    if (auto st = c.pipe.Before(HookType::kBeforeCreate); !st.ok()) return Answer::Fail(st.error());
    // Required fields are checked after the hooks, which may supply them.
    if (auto st = protocol::CheckRequired(c.model(), record); !st.ok())
      return Answer::Fail(st.error());
  }
  auto created = c.db.Create(c.model(), req.records, c.tag);
  if (!created.ok()) return Answer::Fail(created.error());

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

}  // namespace mqttspec::server
