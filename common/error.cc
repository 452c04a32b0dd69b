#include "common/error.h"

namespace mqttspec {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidJson: return "invalid_json";
    case ErrorCode::kInvalidMessage: return "invalid_message";
    case ErrorCode::kInvalidOperation: return "invalid_operation";
    case ErrorCode::kModelNotFound: return "model_not_found";
    case ErrorCode::kUnknownColumn: return "unknown_column";
    case ErrorCode::kInvalidFilter: return "invalid_filter";
    case ErrorCode::kInvalidOption: return "invalid_option";
    case ErrorCode::kInvalidValue: return "invalid_value";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kConflict: return "conflict";
    case ErrorCode::kForbidden: return "forbidden";
    case ErrorCode::kHookError: return "hook_error";
    case ErrorCode::kPayloadTooLarge: return "payload_too_large";
    case ErrorCode::kRateLimited: return "rate_limited";
    case ErrorCode::kTooManySubscriptions: return "too_many_subscriptions";
    case ErrorCode::kResyncRequired: return "resync_required";
    case ErrorCode::kTimeout: return "timeout";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kInternal: return "internal";
  }
  return "internal";
}

}  // namespace mqttspec
