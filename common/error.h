#pragma once
// Errors that cross component boundaries are values, never exceptions.
// ErrorCode lists exactly the protocol's error codes (PROTOCOL.md §Responses and errors).

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace mqttspec {

enum class ErrorCode {
  kInvalidJson,
  kInvalidMessage,
  kInvalidOperation,
  kModelNotFound,
  kUnknownColumn,
  kInvalidFilter,
  kInvalidOption,
  kInvalidValue,
  kNotFound,
  kConflict,
  kForbidden,
  kHookError,
  kPayloadTooLarge,
  kRateLimited,
  kTooManySubscriptions,
  kResyncRequired,
  kTimeout,
  kUnavailable,
  kInternal,
};

// The wire name of a code, e.g. "unknown_column".
std::string_view ErrorCodeName(ErrorCode code);

struct Error {
  ErrorCode code;
  std::string message;  // for the client: never SQL text, stack traces or paths
};

// Result<T> holds either a T or an Error. Cheap to move; check ok() before value().
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const Error& error() const { return std::get<1>(v_); }
  Error&& take_error() { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

struct Ok {};
using Status = Result<Ok>;
inline Status OkStatus() { return Ok{}; }

inline Error MakeError(ErrorCode code, std::string message) {
  return Error{code, std::move(message)};
}

}  // namespace mqttspec
