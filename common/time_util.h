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

// The milliseconds since the Unix epoch of a normalized timestamp ("YYYY-MM-DDTHH:MM:SS.mmmZ"),
// or nullopt for any other text.
std::optional<int64_t> MillisFromIso8601(std::string_view normalized);

// A normalized timestamp strictly later than `previous` (normalized, or empty): now, or
// `previous` + 1 ms when the clock has not passed it. What a time that must move on a change
// (the device twin's reported_at) is set to.
std::string NowIso8601After(std::string_view previous);

// Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS[.fff…]]" with "Z", "±HH:MM", "±HHMM" or no zone
// (taken as UTC); a space may stand for 'T'. Returns the normalized form, or nullopt (also for
// instants outside the years 0001–9999, which not every database can store).
std::optional<std::string> NormalizeIso8601(std::string_view text);

}  // namespace mqttspec
