#pragma once
// The device twin's built-in model, mqttspec.twin (docs/protocol.md §13): one row per device and
// key, with the request the system sends the device, the report the device sends back, when each
// last changed, the request's version and whether the two are equal. The Core registers it when
// twin.enabled; the rules of its writes live in server/handlers/twin.cc.

#include <string_view>

#include "common/value.h"
#include "registry/model.h"

namespace mqttspec::registry {

inline constexpr std::string_view kTwinSchema = "mqttspec";
inline constexpr std::string_view kTwinEntity = "twin";

// The fields of mqttspec.twin, by index.
enum TwinField : int {
  kTwinId,           // text, primary key: "<device_id>/<key>"
  kTwinDeviceId,     // text, indexed
  kTwinKey,          // text
  kTwinRequest,      // json: what the system asks of the device (null: nothing yet)
  kTwinRequestedAt,  // timestamp of the last change of request
  kTwinReport,       // json: what the device last reported (null: nothing yet)
  kTwinReportedAt,   // timestamp of the last change of report's value
  kTwinVersion,      // integer: 0 before the first request, +1 at each change of request
  kTwinInSync,       // boolean: request and report are equal JSON values; indexed
};

// The model (clients read and write it like any: hooks such as rbac restrict it).
ModelPtr TwinModel();

bool IsTwin(const Model& model);

// Whether two values of json fields (JSON text, or null) are equal as JSON: objects whatever the
// order of their members, numbers by value (1 equals 1.0), null equal to a missing value.
bool JsonValuesEqual(const Value& a, const Value& b);

}  // namespace mqttspec::registry
