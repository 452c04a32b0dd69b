// subscribe / unsubscribe: change notifications of one model, filtered (server/subscriptions.h).
#include <fmt/format.h>

#include "server/handlers/handler.h"

namespace mqttspec::server {

namespace {
Error NotServed() {
  return MakeError(ErrorCode::kInvalidOperation, "subscriptions are not served here");
}

// Whether the change log still holds every change after `since` (a resume replays them).
Status CheckResumable(adapters::Database& db, int64_t since) {
  if (!db.logs_changes())
    return MakeError(ErrorCode::kInvalidOption,
                     "since_change_seq needs the change log, which is off (changes.enabled)");
  auto bounds = db.ReadChanges(since, 0);
  if (!bounds.ok()) return bounds.take_error();
  const adapters::ChangePage& log = bounds.value();
  if (since > log.newest)
    return MakeError(ErrorCode::kResyncRequired,
                     fmt::format("change_seq {} is ahead of the change log (newest: {}); read "
                                 "again and subscribe with the read's change_seq",
                                 since, log.newest));
  if (log.oldest > since + 1)
    return MakeError(ErrorCode::kResyncRequired,
                     fmt::format("the change log no longer reaches back to change_seq {} (oldest "
                                 "held: {}); read again and subscribe with the read's change_seq",
                                 since + 1, log.oldest));
  return OkStatus();
}

}  // namespace

Answer HandleSubscribe(Call& c) {
  if (!c.subscriptions) return Answer::Fail(NotServed());
  protocol::Request& req = c.req;
  c.hooks().BindFilters(&req.query.filters);
  if (auto st = c.pipe.Before(HookType::kBeforeSubscribe); !st.ok())
    return Answer::Fail(st.error());
  const std::optional<int64_t> since = req.since_change_seq;
  if (since) {
    if (auto st = CheckResumable(c.db, *since); !st.ok()) return Answer::Fail(st.error());
  }
  auto sub = c.subscriptions->Add(c.client.id, req.model, std::move(req.query.filters),
                                  /*live=*/!since);
  if (!sub.ok()) return Answer::Fail(sub.error());
  if (!since && c.db.shares_log()) {
    // The feed follows the log and may still be behind it: changes committed before the
    // subscription existed are not its news.
    auto bounds = c.db.ReadChanges(INT64_MAX, 0);
    if (!bounds.ok()) {
      (void)c.subscriptions->Remove(c.client.id, sub.value()->id);
      return Answer::Fail(bounds.error());
    }
    sub.value()->replayed_through.store(bounds.value().newest);
  }
  if (SubscriptionKeeper* keeper = c.subscriptions->keeper()) {  // another instance may go on
    auto st = keeper->Keep(*sub.value(), since ? *since : sub.value()->replayed_through.load());
    if (!st.ok()) {
      (void)c.subscriptions->Remove(c.client.id, sub.value()->id);
      return Answer::Fail(st.error());
    }
  }
  c.hooks().BindFilters(nullptr);
  if (auto st = c.pipe.After(HookType::kAfterSubscribe, nullptr, nullptr, false); !st.ok()) {
    (void)c.subscriptions->Remove(c.client.id, sub.value()->id);  // refused: it never was
    if (SubscriptionKeeper* keeper = c.subscriptions->keeper())
      (void)keeper->Forget(c.client.id, sub.value()->id);
    return Answer::Fail(st.error());
  }
  protocol::Reply reply;
  reply.kind = protocol::Reply::Kind::kSubscribed;
  reply.subscription_id = sub.value()->id;
  reply.notify_topic = sub.value()->topic;
  Answer answer = Answer::Of(std::move(reply));
  if (since) {
    answer.resume = std::move(sub).value();
    answer.resume_after = *since;
  }
  return answer;
}

Answer HandleUnsubscribe(Call& c) {
  if (!c.subscriptions) return Answer::Fail(NotServed());
  if (auto st = c.pipe.Before(HookType::kBeforeUnsubscribe); !st.ok())
    return Answer::Fail(st.error());
  Status removed = c.subscriptions->Remove(c.client.id, c.req.subscription_id);
  if (SubscriptionKeeper* keeper = c.subscriptions->keeper()) {
    // Kept beyond this instance: perhaps another serves it (it learns at its next heartbeat).
    auto forgot = keeper->Forget(c.client.id, c.req.subscription_id);
    if (!forgot.ok()) return Answer::Fail(forgot.error());
    if (forgot.value()) removed = OkStatus();
  }
  if (!removed.ok()) return Answer::Fail(removed.error());
  if (auto st = c.pipe.After(HookType::kAfterUnsubscribe, nullptr, nullptr, false); !st.ok())
    return Answer::Fail(st.error());
  protocol::Reply reply;
  reply.kind = protocol::Reply::Kind::kUnsubscribed;
  reply.subscription_id = c.req.subscription_id;
  return Answer::Of(std::move(reply));
}

}  // namespace mqttspec::server
