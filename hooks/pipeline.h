#pragma once
// Pipeline: the Before → database → After chain of one request, written once. A handler
// (server/handlers/) calls Before, does its database step, then After with the result bound;
// what a hook's stop means is decided here and nowhere else:
//   Before (and BeforeHandle)  the operation does not happen: the hook's error (default forbidden)
//   After, read                the client gets the hook's error instead of the rows
//   After, committed write     the write stands: hook_error "<message> (the <operation> was
//                              committed)", and the handler answers with "committed": true
// Thread-safety: one per request, used by the thread that runs it.

#include <mqttspec/plugin.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "hooks/hook_context.h"
#include "hooks/hook_registry.h"

namespace mqttspec::hooks {

class Pipeline {
 public:
  // `hooks` may be null (no hooks run); `entity` is "schema.entity" ("" without a model).
  Pipeline(const HookRegistry* hooks, RequestHookContext& ctx, std::string entity)
      : hooks_(hooks), ctx_(ctx), entity_(std::move(entity)) {}

  RequestHookContext& context() { return ctx_; }

  // Runs the hooks of a Before point (or BeforeHandle) with what the handler bound to the context.
  Status Before(HookType type);

  // Runs the hooks of an After point with `rows` (aligned with `columns`) bound as the result;
  // they may change or remove rows. `committed`: the operation wrote, so a stop is reported as
  // hook_error naming the committed operation.
  Status After(HookType type, std::vector<Row>* rows, const std::vector<int>* columns,
               bool committed);

 private:
  Status Run(HookType type);

  const HookRegistry* hooks_;
  RequestHookContext& ctx_;
  std::string entity_;
};

}  // namespace mqttspec::hooks
