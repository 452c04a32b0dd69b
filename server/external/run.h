#pragma once
// External mode (broker.mode external): mqttspecd serves as a Paho MQTT client of the broker at
// broker.url until SIGINT or SIGTERM, then stops taking requests, answers those it has taken,
// and returns 0 (or the exit code of a failure: exit_codes.h).

#include "server/config.h"

namespace mqttspec::server {

int RunExternal(const Config& config);

}  // namespace mqttspec::server
