// subscribe / unsubscribe: change notifications of one model, filtered (server/subscriptions.h).
#include "server/handlers/handler.h"

namespace mqttspec::server {

namespace {
Error NotServed() {
  return MakeError(ErrorCode::kInvalidOperation, "subscriptions are not served here");
}
}  // namespace

Answer HandleSubscribe(Call& c) {
  if (!c.subscriptions) return Answer::Fail(NotServed());
  protocol::Request& req = c.req;
  c.hooks().BindFilters(&req.query.filters);
  if (auto st = c.pipe.Before(HookType::kBeforeSubscribe); !st.ok())
    return Answer::Fail(st.error());
  auto sub = c.subscriptions->Add(c.client.id, req.model, std::move(req.query.filters));
  if (!sub.ok()) return Answer::Fail(sub.error());
  c.hooks().BindFilters(nullptr);
  if (auto st = c.pipe.After(HookType::kAfterSubscribe, nullptr, nullptr, false); !st.ok()) {
    (void)c.subscriptions->Remove(c.client.id, sub.value()->id);  // refused: it never was
    return Answer::Fail(st.error());
  }
  protocol::Reply reply;
  reply.kind = protocol::Reply::Kind::kSubscribed;
  reply.subscription_id = sub.value()->id;
  reply.notify_topic = sub.value()->topic;
  return Answer::Of(std::move(reply));
}

Answer HandleUnsubscribe(Call& c) {
  if (!c.subscriptions) return Answer::Fail(NotServed());
  if (auto st = c.pipe.Before(HookType::kBeforeUnsubscribe); !st.ok())
    return Answer::Fail(st.error());
  if (auto st = c.subscriptions->Remove(c.client.id, c.req.subscription_id); !st.ok())
    return Answer::Fail(st.error());
  if (auto st = c.pipe.After(HookType::kAfterUnsubscribe, nullptr, nullptr, false); !st.ok())
    return Answer::Fail(st.error());
  protocol::Reply reply;
  reply.kind = protocol::Reply::Kind::kUnsubscribed;
  reply.subscription_id = c.req.subscription_id;
  return Answer::Of(std::move(reply));
}

}  // namespace mqttspec::server
