#include "hooks/pipeline.h"

#include <fmt/format.h>

namespace mqttspec::hooks {

Status Pipeline::Run(HookType type) {
  if (!hooks_ || !hooks_->Has(type)) return OkStatus();
  ctx_.set_type(type);
  return hooks_->Run(type, entity_, ctx_, ctx_.state());
}

Status Pipeline::Before(HookType type) { return Run(type); }

Status Pipeline::After(HookType type, std::vector<Row>* rows, const std::vector<int>* columns,
                       bool committed) {
  ctx_.BindResult(rows, columns);
  auto st = Run(type);
  if (st.ok() || !committed) return st;
  return MakeError(ErrorCode::kHookError,
                   fmt::format("{} (the {} was committed)", st.error().message, ctx_.operation()));
}

}  // namespace mqttspec::hooks
