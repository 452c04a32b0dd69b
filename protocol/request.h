#pragma once
// ParseRequest: turns one request payload into a typed, fully validated request — the envelope
// here, options (options.h), filters (filters.h) and records (record.h) beside it. Every column
// name is resolved against the model registry and every value is coerced to its field's type, so
// what leaves protocol/ can be handed to a Database without further checks.

#include <rapidjson/document.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/query.h"
#include "common/error.h"
#include "protocol/limits.h"
#include "registry/model_registry.h"

namespace mqttspec::protocol {

enum class Operation { kPing, kRead, kCreate, kUpdate, kDelete, kMeta, kSubscribe, kUnsubscribe };

std::string_view OperationName(Operation op);
inline bool IsWrite(Operation op) {
  return op == Operation::kCreate || op == Operation::kUpdate || op == Operation::kDelete;
}

struct Request {
  std::string id_json = "\"\"";  // the request id as JSON text, echoed verbatim
  std::string id;                // the id as text (dedup key)
  Operation op = Operation::kPing;
  registry::ModelPtr model;
  std::optional<Value> key;               // read/update/delete target
  std::vector<adapters::Record> records;  // create: one or more; update: exactly one
  bool batch = false;                     // create given an array
  adapters::ReadQuery query;              // read: filters, sort, columns, limit, offset
  std::string subscription_id;            // unsubscribe
  std::optional<int64_t> since_change_seq;  // subscribe: resume after this change
  // update of mqttspec.twin (registry/twin.h): data's "expected_version", taken out of the record.
  std::optional<int64_t> expected_version;
  // Where the request came from. Never read from a payload: the front sets it for a device's
  // twin messages (Router::HandleTwin), which run as requests of the device.
  enum class Origin { kClient, kTwinReport, kTwinGet };
  Origin origin = Origin::kClient;
};

// Parses client JSON text (a request, a device's twin message) as every request is parsed:
// iteratively, UTF-8 checked, numbers exact (common/json_text.h). `whole`: nothing but
// whitespace may follow the value (else, as for requests, parsing stops after it). Errors:
// invalid_json, with the offset.
Status ParseJsonText(std::string_view text, rapidjson::Document& doc, bool whole);

// The request's id as JSON text (for answers that refuse a request without running it), or "".
std::string RequestIdJson(std::string_view payload);

// Parses `payload`. On failure `out->id_json` still holds the id when it could be read, so the
// error response can echo it.
Status ParseRequest(std::string_view payload, const registry::ModelRegistry& models,
                    const ParseLimits& limits, Request* out);

}  // namespace mqttspec::protocol
