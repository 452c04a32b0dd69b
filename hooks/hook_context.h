#pragma once
// RequestHookContext: the HookContext a request's handlers hand to hooks. It binds, per hook
// point, the parts of the request a hook may see or change (data, filters, result) and routes
// every change through the same checks as client input: AddFilter through the protocol's filter
// rules (protocol/filters.h), SetField through the registry's coercion.
// Thread-safety: one per request, used by the thread that runs the request.

#include <mqttspec/plugin.h>

#include <memory>
#include <optional>

#include "adapters/query.h"
#include "hooks/hook_registry.h"
#include "protocol/limits.h"
#include "registry/model.h"

namespace mqttspec::hooks {

class RequestHookContext : public HookContext {
 public:
  RequestHookContext(ClientInfo& client, std::string_view operation, registry::ModelPtr model,
                     const std::optional<Value>* key, const protocol::ParseLimits& limits)
      : client_(client),
        operation_(operation),
        model_(std::move(model)),
        key_(key),
        limits_(limits) {}

  void set_type(HookType t) { type_ = t; }
  void BindData(adapters::Record* data) { data_ = data; }
  void BindFilters(adapters::FilterList* filters) { filters_ = filters; }
  void BindResult(std::vector<Row>* rows, const std::vector<int>* columns) {
    rows_ = rows;
    columns_ = columns;
  }
  AbortState& state() { return state_; }

  HookType type() const override { return type_; }
  ClientInfo& client() override { return client_; }
  std::string_view operation() const override { return operation_; }
  const ModelInfo* model() const override;
  std::string_view schema() const override;
  std::string_view entity() const override;
  const Value* record_id() const override { return key_ && *key_ ? &**key_ : nullptr; }
  std::optional<Value> GetField(std::string_view name) const override;
  bool HasField(std::string_view name) const override { return GetField(name).has_value(); }
  bool SetField(std::string_view name, const Value& value) override;
  void RemoveField(std::string_view name) override;
  bool AddFilter(std::string_view column, std::string_view op,
                 const std::vector<Value>& values) override;
  std::vector<Row>* result() override { return rows_; }
  std::vector<std::string> result_columns() const override;
  HookResult Abort(std::string message, std::string code) override {
    state_.Abort(std::move(message), std::move(code));
    return HookResult::kStop;
  }

 private:
  HookType type_ = HookType::kBeforeHandle;
  ClientInfo& client_;
  std::string_view operation_;
  registry::ModelPtr model_;
  const std::optional<Value>* key_;
  const protocol::ParseLimits& limits_;
  AbortState state_;
  adapters::Record* data_ = nullptr;
  adapters::FilterList* filters_ = nullptr;
  std::vector<Row>* rows_ = nullptr;
  const std::vector<int>* columns_ = nullptr;
  // Built on first use; behind a pointer, as most requests never ask for it: a write's state
  // (Router::Pending) then stays small enough for malloc's per-thread cache (< 1 KiB).
  mutable std::unique_ptr<ModelInfo> info_;
};

// A model as hooks see it.
ModelInfo DescribeModel(const registry::Model& model);

}  // namespace mqttspec::hooks
