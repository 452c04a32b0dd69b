#pragma once
// mqttspecd's exit codes, one rule for every way it stops: 0 clean stop, 1 runtime failure
// (database unavailable, broker binary or plugin missing, port taken), 2 configuration error
// (a bad key or value, a TLS file, a model, a hook plugin that is refused — the same under
// --check-config and at start in both modes; inside the embedded broker see plugin.cc).
// Each helper prints the message on stderr and returns the code.

#include <string>

#include "common/error.h"

namespace mqttspec::server {

inline constexpr int kExitOk = 0, kExitFailure = 1, kExitConfigError = 2;

int ConfigError(const std::string& message);  // "mqttspecd: configuration error: …" → 2
int Failure(const std::string& message);      // "mqttspecd: …" → 1
// Core::Create's errors: invalid_value is the configuration's fault (a model, a plugin), the
// rest (database unavailable, …) a runtime failure.
int CoreFailure(const Error& error);

}  // namespace mqttspec::server
