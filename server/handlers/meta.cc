// meta: the model as clients may know it (fields, key, table name); no hooks beyond BeforeHandle.
#include "server/handlers/handler.h"

namespace mqttspec::server {

Answer HandleMeta(Call& c) {
  protocol::Reply reply;
  reply.kind = protocol::Reply::Kind::kMeta;
  reply.model = &c.model();
  reply.table = c.db.TableName(c.model());
  return Answer::Of(std::move(reply));
}

}  // namespace mqttspec::server
