#pragma once
// Rendering: every JSON the service sends — responses (Reply), errors, pong, meta and change
// notifications — is written here and nowhere else, as docs/protocol.md specifies.
// Thread-safety: pure functions; NotificationTemplate is immutable once built.

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/query.h"
#include "common/error.h"
#include "common/value.h"
#include "registry/model.h"

namespace mqttspec::protocol {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// Writes a row (values aligned with `columns`) as a JSON object.
void WriteRow(const registry::Model& model, const std::vector<int>& columns, const Row& row,
              JsonWriter& w);

// What a successful operation produced; RenderReply turns it into the response.
struct Reply {
  enum class Kind { kOne, kList, kCreated, kDeleted, kMeta, kSubscribed, kUnsubscribed };
  Kind kind = Kind::kOne;
  const registry::Model* model = nullptr;
  std::vector<int> columns;              // kOne, kList, kCreated: the fields of each row
  std::vector<std::optional<Row>> rows;  // kOne: one; kList, kCreated; nullopt: hidden by a hook
  bool batch = false;                    // kCreated: the data was an array
  int64_t total = 0, limit = 0, offset = 0;   // kList: metadata
  std::optional<Value> key;                   // kDeleted: the deleted row's key
  std::string table;                          // kMeta: the table as the database names it
  std::string subscription_id, notify_topic;  // kSubscribed, kUnsubscribed
  std::optional<int64_t> change_seq;          // kOne, kList of a read: metadata.change_seq
};

std::string RenderReply(std::string_view id_json, const Reply& reply);

// {"id":…,"type":"response","success":false,"error":{"code","message"[, "committed":true]},…}.
// `committed`: the request's write happened although the answer is an error (an After hook of
// the write stopped).
std::string RenderError(std::string_view id_json, const Error& error, bool committed = false);

// {"id":…,"type":"pong","instance":…,"timestamp":…}. `instance` names this process (random, fixed
// at its start): a client that sees it change knows the service restarted and its subscriptions
// are gone (the client SDK resumes them).
std::string RenderPong(std::string_view id_json);
const std::string& ProcessInstance();

// One change rendered once for all the subscriptions it reaches: only the subscription id, seq
// and match flag differ between them.
// A filter list (the parsed, checked form) as the protocol's `filters` array (docs/protocol.md):
// conditions {"column","operator","value"?,"logic_operator"} and groups {"logic_operator",
// "filters"}. For the admin API's view of a subscription.
std::string RenderFilters(const registry::Model& model, const adapters::FilterList& filters);

class NotificationTemplate {
 public:
  // `operation`: create | update | delete; `row`: all fields of `model`; `change_seq`: the
  // change's place in the change log (0: not logged, left out).
  NotificationTemplate(std::string_view operation, const registry::Model& model, const Row& row,
                       int64_t change_seq = 0);
  // `match` false: the row stopped matching the subscription's filters (an update).
  std::string For(std::string_view subscription_id, uint64_t seq, bool match) const;

 private:
  std::string head_, middle_, tail_;
};

// The last notification of a resumed subscription's replay (docs/protocol.md "Resuming"):
// {"type":"notification","operation":"replay_complete","subscription_id",…,"change_seq",
// "replayed",…} — live notifications follow.
std::string RenderReplayComplete(std::string_view subscription_id, int64_t change_seq,
                                 uint64_t replayed);

// A resumed subscription whose replay found the log trimmed past its position meanwhile; the
// subscription has ended: {"type":"notification","operation":"resync_required",…,"error":{…}}.
std::string RenderResyncRequired(std::string_view subscription_id, int64_t change_seq,
                                 const Error& error);

}  // namespace mqttspec::protocol
