#pragma once
// ISO 8601 timestamps, always normalized to UTC with millisecond precision:
// "YYYY-MM-DDTHH:MM:SS.mmmZ". Fixed width, so text order is time order.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mqttspec {

// The current time, normalized.
std::string NowIso8601();

// Milliseconds since the Unix epoch, normalized.
std::string Iso8601FromMillis(int64_t ms);

// Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS[.fff…]]" with "Z", "±HH:MM", "±HHMM" or no zone
// (taken as UTC); a space may stand for 'T'. Returns the normalized form, or nullopt (also for
// instants outside the years 0001–9999, which not every database can store).
std::optional<std::string> NormalizeIso8601(std::string_view text);

}  // namespace mqttspec
