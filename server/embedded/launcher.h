#pragma once
// The embedded launcher (broker.mode embedded, the default): checks what the broker will need
// (the Mosquitto binary, our plugin, free ports, the database — plugins only checked, never
// initialised here), writes <data_dir>/mosquitto.conf (broker_config.h) and exec()s Mosquitto
// with it: one process from then on, whose signals and logs are the broker's, and whose plugin
// (plugin.cc) builds the Core and serves. Returns only when it could not exec (an exit code).

#include <string>

#include "server/config.h"

namespace mqttspec::server::embedded {

int RunEmbedded(const Config& config, const std::string& config_path);

}  // namespace mqttspec::server::embedded
