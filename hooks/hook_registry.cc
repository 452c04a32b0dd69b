#include "hooks/hook_registry.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace mqttspec::hooks {

std::string_view HookTypeName(HookType type) {
  static constexpr std::string_view kNames[kHookTypeCount] = {
      "BeforeHandle",      "BeforeConnect",   "AfterConnect", "BeforeDisconnect", "AfterDisconnect",
      "BeforeRead",        "AfterRead",       "BeforeCreate", "AfterCreate",      "BeforeUpdate",
      "AfterUpdate",       "BeforeDelete",    "AfterDelete",  "BeforeSubscribe",  "AfterSubscribe",
      "BeforeUnsubscribe", "AfterUnsubscribe"};
  return kNames[static_cast<size_t>(type)];
}

AbortState::Detail& AbortState::detail() {
  if (!detail_) detail_ = std::make_unique<Detail>();
  return *detail_;
}

void AbortState::Abort(std::string message, std::string code) {
  aborted_ = true;
  detail().message = std::move(message);
  detail().code = std::move(code);
}

void AbortState::Fail(Error error) {
  if (!failed()) detail().failure = std::move(error);
}

Error AbortState::error() const {
  if (failed()) return *detail_->failure;
  const std::string_view message = detail_ ? detail_->message : std::string_view();
  const std::string_view code = detail_ ? detail_->code : std::string_view();
  const std::string text = message.empty() ? "refused by a hook" : std::string(message);
  for (int c = 0; c <= static_cast<int>(ErrorCode::kInternal); ++c) {
    if (ErrorCodeName(static_cast<ErrorCode>(c)) == code)
      return MakeError(static_cast<ErrorCode>(c), text);
  }
  return MakeError(ErrorCode::kForbidden, text);
}

void HookRegistry::Register(HookType type, HookFn fn, HookOptions options, std::string plugin) {
  auto& list = hooks_[static_cast<size_t>(type)];
  std::string entity = options.entity;
  if (!entity.empty() && entity.find('.') == std::string::npos) entity = "public." + entity;
  list.push_back(
      Entry{options.priority, registered_++, std::move(entity), std::move(plugin), std::move(fn)});
  std::stable_sort(list.begin(), list.end(), [](const Entry& a, const Entry& b) {
    return a.priority != b.priority ? a.priority < b.priority : a.order < b.order;
  });
}

size_t HookRegistry::count() const { return registered_; }

std::vector<HookRegistry::Info> HookRegistry::List() const {
  std::vector<Info> out;
  for (size_t t = 0; t < kHookTypeCount; ++t)
    for (const Entry& e : hooks_[t])
      out.push_back(Info{static_cast<HookType>(t), e.plugin, e.entity, e.priority});
  return out;
}

Status HookRegistry::Run(HookType type, std::string_view entity, HookContext& ctx,
                         AbortState& state) const {
  for (const Entry& e : hooks_[static_cast<size_t>(type)]) {
    if (!e.entity.empty() && e.entity != entity) continue;
    HookResult result;
    try {
      result = e.fn(ctx);
    } catch (const std::exception& ex) {
      spdlog::error("{} hook failed: {}", HookTypeName(type), ex.what());
      return MakeError(ErrorCode::kHookError, fmt::format("a {} hook failed", HookTypeName(type)));
    } catch (...) {
      spdlog::error("{} hook failed with a non-standard exception", HookTypeName(type));
      return MakeError(ErrorCode::kHookError, fmt::format("a {} hook failed", HookTypeName(type)));
    }
    // A failed SetField/AddFilter stops too: the hook's change could not be made.
    if (result == HookResult::kStop || state.aborted() || state.failed()) return state.error();
  }
  return OkStatus();
}

}  // namespace mqttspec::hooks
