#include "hooks/hook_context.h"

#include <fmt/format.h>

#include "common/json_document.h"
#include "protocol/filters.h"
#include "registry/coerce.h"

namespace mqttspec::hooks {

ModelInfo DescribeModel(const registry::Model& m) {
  ModelInfo info;
  info.schema = m.schema();
  info.entity = m.entity();
  info.primary_key = m.primary().name;
  for (const auto& f : m.fields()) {
    info.fields.push_back(FieldInfo{f.name, std::string(registry::FieldTypeName(f.type)),
                                    f.nullable, f.primary, f.unique || f.primary});
  }
  return info;
}

const ModelInfo* RequestHookContext::model() const {
  if (!model_) return nullptr;
  if (!info_) info_ = std::make_unique<ModelInfo>(DescribeModel(*model_));
  return info_.get();
}

std::string_view RequestHookContext::schema() const {
  return model_ ? std::string_view(model_->schema()) : std::string_view();
}

std::string_view RequestHookContext::entity() const {
  return model_ ? std::string_view(model_->entity()) : std::string_view();
}

std::optional<Value> RequestHookContext::GetField(std::string_view name) const {
  if (!data_ || !model_) return std::nullopt;
  int idx = model_->FindField(name);
  for (const auto& a : *data_) {
    if (a.field == idx) return a.value;
  }
  return std::nullopt;
}

bool RequestHookContext::SetField(std::string_view name, const Value& value) {
  if (!data_ || !model_) {
    state_.Fail(MakeError(ErrorCode::kHookError, "a hook set a field where there is no data"));
    return false;
  }
  int idx = model_->FindField(name);
  if (idx < 0) {
    state_.Fail(MakeError(ErrorCode::kUnknownColumn, fmt::format("column '{}' is not a field of {}",
                                                                 name, model_->qualified_name())));
    return false;
  }
  const auto& field = model_->field(static_cast<size_t>(idx));
  LocalDocument doc;
  auto coerced = registry::CoerceJson(field, registry::ToJson(field, value, doc->GetAllocator()));
  if (!coerced.ok()) {
    state_.Fail(coerced.error());
    return false;
  }
  for (auto& a : *data_) {
    if (a.field == idx) {
      a.value = std::move(coerced).value();
      return true;
    }
  }
  data_->push_back({idx, std::move(coerced).value()});
  return true;
}

void RequestHookContext::RemoveField(std::string_view name) {
  if (!data_ || !model_) return;
  int idx = model_->FindField(name);
  std::erase_if(*data_, [&](const adapters::Assignment& a) { return a.field == idx; });
}

bool RequestHookContext::AddFilter(std::string_view column, std::string_view op,
                                   const std::vector<Value>& values) {
  if (!filters_ || !model_) {
    state_.Fail(MakeError(ErrorCode::kHookError, "a hook added a filter where there are none"));
    return false;
  }
  // Built as the JSON a client would send, then parsed by the same rules.
  LocalDocument local(rapidjson::kObjectType);
  rapidjson::Document& doc = *local;
  auto& a = doc.GetAllocator();
  doc.AddMember("column",
                rapidjson::Value(column.data(), static_cast<rapidjson::SizeType>(column.size()), a),
                a);
  doc.AddMember("operator",
                rapidjson::Value(op.data(), static_cast<rapidjson::SizeType>(op.size()), a), a);
  int idx = model_->FindField(column);
  const registry::Field& field = model_->field(static_cast<size_t>(idx < 0 ? 0 : idx));
  const bool list = op == "in" || op == "not_in" || op == "between";
  if (list) {
    rapidjson::Value arr(rapidjson::kArrayType);
    for (const auto& v : values) arr.PushBack(registry::ToJson(field, v, a), a);
    doc.AddMember("value", arr, a);
  } else if (!values.empty()) {
    doc.AddMember("value", registry::ToJson(field, values.front(), a), a);
  }
  auto node = protocol::ParseFilter(*model_, doc, limits_);
  if (!node.ok()) {
    state_.Fail(node.error());
    return false;
  }
  // AND it with everything so far: with an OR at the top level, the existing filters become a
  // group first, so the hook's condition narrows all of them.
  auto has_or =
      std::any_of(filters_->begin() + (filters_->empty() ? 0 : 1), filters_->end(),
                  [](const adapters::FilterNode& n) { return n.logic == adapters::Logic::kOr; });
  if (has_or) {
    adapters::FilterNode group;
    group.is_group = true;
    group.children = std::move(*filters_);
    filters_->clear();
    filters_->push_back(std::move(group));
  }
  node.value().logic = adapters::Logic::kAnd;
  filters_->push_back(std::move(node).value());
  return true;
}

std::vector<std::string> RequestHookContext::result_columns() const {
  std::vector<std::string> out;
  if (!columns_ || !model_) return out;
  for (int c : *columns_) out.push_back(model_->field(static_cast<size_t>(c)).name);
  return out;
}

}  // namespace mqttspec::hooks
