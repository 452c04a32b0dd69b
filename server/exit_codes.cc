#include "server/exit_codes.h"

#include <iostream>

namespace mqttspec::server {

int ConfigError(const std::string& message) {
  std::cerr << "mqttspecd: configuration error: " << message << "\n";
  return kExitConfigError;
}

int Failure(const std::string& message) {
  std::cerr << "mqttspecd: " << message << "\n";
  return kExitFailure;
}

int CoreFailure(const Error& e) {
  return e.code == ErrorCode::kInvalidValue ? ConfigError(e.message) : Failure(e.message);
}

}  // namespace mqttspec::server
