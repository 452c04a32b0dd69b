#pragma once
// ParseRequest: turns one request payload into a typed, fully validated request. Every column
// name is resolved against the model registry here and every value is coerced to its field's
// type, so what leaves this file can be handed to a Database without further checks.

#include <rapidjson/document.h>

#include <optional>
#include <string>
#include <string_view>

#include "adapters/query.h"
#include "common/error.h"
#include "registry/model_registry.h"

namespace mqttspec::server {

enum class Operation { kPing, kRead, kCreate, kUpdate, kDelete, kMeta, kSubscribe, kUnsubscribe };

std::string_view OperationName(Operation op);
inline bool IsWrite(Operation op) {
  return op == Operation::kCreate || op == Operation::kUpdate || op == Operation::kDelete;
}

struct ParseLimits {
  int64_t max_rows = 1000;
  int max_filters = 64;           // conditions and groups, counted together
  int max_filter_depth = 8;       // nesting of groups
  size_t max_list_values = 1000;  // values of one in/not_in
  size_t max_batch = 1000;        // records of one create
};

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
};

// One filter object ({"column", "operator", "value"} or a group) checked exactly like a client's:
// used for filters that hooks add.
Result<adapters::FilterNode> ParseFilter(const registry::Model& model,
                                         const rapidjson::Value& filter, const ParseLimits& limits);

// Fills in the defaults (literal or now) of the fields a create leaves out.
void ApplyDefaults(const registry::Model& model, adapters::Record* record);
// invalid_value when a field that is neither nullable, defaulted nor generated is missing. Runs
// after the BeforeCreate hooks, which may supply such a field.
Status CheckRequired(const registry::Model& model, const adapters::Record& record);
// Both, for inserts that pass no hooks.
Status CompleteRecord(const registry::Model& model, adapters::Record* record);

// The request's id as JSON text (for answers that refuse a request without running it), or "".
std::string RequestIdJson(std::string_view payload);

// Parses `payload`. On failure `out->id_json` still holds the id when it could be read, so the
// error response can echo it.
Status ParseRequest(std::string_view payload, const registry::ModelRegistry& models,
                    const ParseLimits& limits, Request* out);

}  // namespace mqttspec::server
