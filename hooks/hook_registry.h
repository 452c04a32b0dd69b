#pragma once
// HookRegistry: the hooks of every HookType, in the order they run (priority, then registration
// order), each optionally scoped to one entity. Run() runs those of one hook point one after
// another until one returns Stop (its Abort error, default forbidden), throws (hook_error) or
// fails to make a change it asked for (SetField/AddFilter: that error); the rest are skipped.
// What a stop means for the request is decided by hooks/pipeline.h.
// Thread-safety: register during start-up; Run may then be called from any thread.

#include <mqttspec/plugin.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

namespace mqttspec::hooks {

std::string_view HookTypeName(HookType type);

// The state a hook leaves behind, read by the pipeline after each hook.
class AbortState {
 public:
  void Abort(std::string message, std::string code);
  bool aborted() const { return aborted_; }
  // The protocol error: the hook's code if it is one of the protocol's, else forbidden.
  Error error() const;
  // A failed SetField/AddFilter: the client gets this error (unknown_column, invalid_value …).
  void Fail(Error error);
  bool failed() const { return detail_ && detail_->failure.has_value(); }

 private:
  struct Detail {
    std::string message, code;
    std::optional<Error> failure;
  };
  Detail& detail();
  bool aborted_ = false;
  // Made on the first Abort or Fail (most requests have neither): the state is part of every
  // request's hook context, which stays small this way (hook_context.h).
  std::unique_ptr<Detail> detail_;
};

class HookRegistry {
 public:
  // `plugin`: who registered it (the plugin's name), for the admin API.
  void Register(HookType type, HookFn fn, HookOptions options = {}, std::string plugin = "");

  bool Has(HookType type) const { return !hooks_[static_cast<size_t>(type)].empty(); }
  size_t count() const;

  // Every registered hook, by hook point and then in running order.
  struct Info {
    HookType type;
    std::string plugin, entity;  // entity: "schema.entity", "" = all
    int priority;
  };
  std::vector<Info> List() const;

  // Runs the hooks of `type` that apply to `entity` ("schema.entity"; "" matches only unscoped
  // hooks). `state` is the context's abort state. Errors: the aborting hook's error, or
  // hook_error when a hook throws (its message is logged, not sent).
  Status Run(HookType type, std::string_view entity, HookContext& ctx, AbortState& state) const;

 private:
  struct Entry {
    int priority;
    size_t order;
    std::string entity;
    std::string plugin;
    HookFn fn;
  };
  std::array<std::vector<Entry>, kHookTypeCount> hooks_;
  size_t registered_ = 0;
};

}  // namespace mqttspec::hooks
