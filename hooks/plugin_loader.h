#pragma once
// Loads hook plugins (shared libraries built against <mqttspec/plugin.h>): dlopen, ABI version
// check, then the plugin's init with its options. Plugins stay loaded for the life of the
// process (their hooks are code inside them).

#include <mqttspec/plugin.h>

#include <string>

#include "common/error.h"

namespace mqttspec::hooks {

// Errors (invalid_value, with the path in the message — for the operator, never a client):
// the file cannot be loaded, lacks the entry points, was built for another ABI version, or its
// init returned false or threw.
Status LoadPlugin(const std::string& path, const PluginOptions& options, PluginHost& host);

// Loads the library and checks its entry points and ABI version without calling its init (for
// --check-config). The same errors as LoadPlugin.
Status CheckPlugin(const std::string& path);

}  // namespace mqttspec::hooks
