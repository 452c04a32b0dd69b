// NormalizeIso8601 / NowIso8601: every accepted form normalizes to "YYYY-MM-DDTHH:MM:SS.mmmZ"
// in UTC; everything else is rejected.

#include "common/time_util.h"

#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <regex>
#include <string>

namespace mqttspec {
namespace {

std::string Norm(std::string_view text) {
  auto out = NormalizeIso8601(text);
  return out ? *out : std::string("<nullopt>");
}

const std::regex kNormalized(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$)");

TEST(TimeUtilTest, DateOnlyIsMidnightUtc) {
  EXPECT_EQ(Norm("2026-11-22"), "2026-11-22T00:00:00.000Z");
}

TEST(TimeUtilTest, HoursAndMinutesOnlyGetZeroSecondsAndMillis) {
  EXPECT_EQ(Norm("2026-11-22T10:05"), "2026-11-22T10:05:00.000Z");
  EXPECT_EQ(Norm("2026-11-22T10:05Z"), "2026-11-22T10:05:00.000Z");
}

TEST(TimeUtilTest, SecondsWithoutFractionGetZeroMillis) {
  EXPECT_EQ(Norm("2026-11-22T10:05:07Z"), "2026-11-22T10:05:07.000Z");
}

TEST(TimeUtilTest, AlreadyNormalizedTextIsUnchanged) {
  EXPECT_EQ(Norm("2026-11-22T10:00:00.000Z"), "2026-11-22T10:00:00.000Z");
  EXPECT_EQ(Norm("1999-01-02T03:04:05.678Z"), "1999-01-02T03:04:05.678Z");
}

TEST(TimeUtilTest, NoZoneIsTakenAsUtc) {
  EXPECT_EQ(Norm("2026-11-22T10:00:00"), "2026-11-22T10:00:00.000Z");
  EXPECT_EQ(Norm("2026-11-22T10:00:00.250"), "2026-11-22T10:00:00.250Z");
}

TEST(TimeUtilTest, SpaceMayStandForT) {
  EXPECT_EQ(Norm("2026-11-22 10:00:00"), "2026-11-22T10:00:00.000Z");
  EXPECT_EQ(Norm("2026-11-22 10:00:00.5+01:00"), "2026-11-22T09:00:00.500Z");
}

TEST(TimeUtilTest, LowercaseZIsAccepted) {
  EXPECT_EQ(Norm("2026-11-22T10:00:00z"), "2026-11-22T10:00:00.000Z");
}

TEST(TimeUtilTest, FractionShorterThanMillisIsPadded) {
  EXPECT_EQ(Norm("2026-11-22T10:00:00.5Z"), "2026-11-22T10:00:00.500Z");
  EXPECT_EQ(Norm("2026-11-22T10:00:00.05Z"), "2026-11-22T10:00:00.050Z");
}

TEST(TimeUtilTest, FractionLongerThanMillisIsCutToMillis) {
  auto out = NormalizeIso8601("2026-11-22T10:00:00.123456789Z");
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->substr(0, 20), "2026-11-22T10:00:00.");
  EXPECT_TRUE(*out == "2026-11-22T10:00:00.123Z" || *out == "2026-11-22T10:00:00.124Z") << *out;
}

TEST(TimeUtilTest, PositiveOffsetWithColonIsSubtracted) {
  EXPECT_EQ(Norm("2026-11-22T10:00:00+05:30"), "2026-11-22T04:30:00.000Z");
}

TEST(TimeUtilTest, NegativeOffsetWithColonIsAdded) {
  EXPECT_EQ(Norm("2026-11-22T10:00:00-08:00"), "2026-11-22T18:00:00.000Z");
}

TEST(TimeUtilTest, OffsetWithoutColonIsAccepted) {
  EXPECT_EQ(Norm("2026-11-22T10:00:00+0530"), "2026-11-22T04:30:00.000Z");
  EXPECT_EQ(Norm("2026-11-22T10:00:00-0100"), "2026-11-22T11:00:00.000Z");
}

TEST(TimeUtilTest, OffsetAfterMinutesWithoutSecondsIsAccepted) {
  EXPECT_EQ(Norm("2026-11-22T10:00-02:00"), "2026-11-22T12:00:00.000Z");
}

TEST(TimeUtilTest, OffsetCrossingMidnightChangesTheDate) {
  EXPECT_EQ(Norm("2026-11-22T01:00:00+02:00"), "2026-11-21T23:00:00.000Z");
  EXPECT_EQ(Norm("2026-11-22T23:00:00-02:00"), "2026-11-23T01:00:00.000Z");
}

TEST(TimeUtilTest, OffsetCrossingYearAndLeapDayBoundaries) {
  EXPECT_EQ(Norm("2026-01-01T00:30:00+01:00"), "2025-12-31T23:30:00.000Z");
  EXPECT_EQ(Norm("2025-12-31T23:30:00-01:00"), "2026-01-01T00:30:00.000Z");
  EXPECT_EQ(Norm("2024-03-01T00:00:00+00:01"), "2024-02-29T23:59:00.000Z");
  EXPECT_EQ(Norm("2023-03-01T00:00:00+00:01"), "2023-02-28T23:59:00.000Z");
}

TEST(TimeUtilTest, DatesBeforeTheEpochNormalize) {
  EXPECT_EQ(Norm("1969-12-31T23:59:59.999Z"), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(Norm("1970-01-01T00:00:00+00:30"), "1969-12-31T23:30:00.000Z");
  EXPECT_EQ(Norm("1900-03-01"), "1900-03-01T00:00:00.000Z");
}

TEST(TimeUtilTest, LeapDaysAreValidOnlyInLeapYears) {
  EXPECT_EQ(Norm("2024-02-29"), "2024-02-29T00:00:00.000Z");
  EXPECT_EQ(Norm("2000-02-29"), "2000-02-29T00:00:00.000Z");
  EXPECT_FALSE(NormalizeIso8601("2023-02-29"));
  EXPECT_FALSE(NormalizeIso8601("1900-02-29"));
}

TEST(TimeUtilTest, RejectsImpossibleDates) {
  EXPECT_FALSE(NormalizeIso8601("2026-00-10"));
  EXPECT_FALSE(NormalizeIso8601("2026-13-10"));
  EXPECT_FALSE(NormalizeIso8601("2026-01-00"));
  EXPECT_FALSE(NormalizeIso8601("2026-01-32"));
  EXPECT_FALSE(NormalizeIso8601("2026-04-31"));
  EXPECT_FALSE(NormalizeIso8601("2026-02-30"));
}

TEST(TimeUtilTest, RejectsImpossibleTimes) {
  EXPECT_FALSE(NormalizeIso8601("2026-11-22T24:00:00Z"));
  EXPECT_FALSE(NormalizeIso8601("2026-11-22T10:60:00Z"));
  EXPECT_FALSE(NormalizeIso8601("2026-11-22T10:00:61Z"));
}

TEST(TimeUtilTest, RejectsImpossibleOffsets) {
  EXPECT_FALSE(NormalizeIso8601("2026-11-22T10:00:00+24:00"));
  EXPECT_FALSE(NormalizeIso8601("2026-11-22T10:00:00+05:60"));
}

TEST(TimeUtilTest, RejectsMalformedText) {
  for (const char* bad : {"",
                          "2026",
                          "2026-11",
                          "2026-1-22",
                          "2026-11-2",
                          "26-11-22",
                          "2026/11/22",
                          "2026-11-22T",
                          "2026-11-22T10",
                          "2026-11-22T10:",
                          "2026-11-22T1:00",
                          "2026-11-22T10:00:0",
                          "2026-11-22T10:00:00.",
                          "2026-11-22T10:00:00.Z",
                          "2026-11-22X10:00",
                          "2026-11-22T10:00:00ZZ",
                          "2026-11-22T10:00:00Z ",
                          " 2026-11-22",
                          "2026-11-22T10:00:00+5",
                          "2026-11-22T10:00:00+05:3",
                          "2026-11-22T10:00:00 UTC",
                          "2026-11-22Z",
                          "abcd-ef-gh",
                          "2026-11-22T10:00:00+05:30x",
                          "tomorrow"}) {
    EXPECT_FALSE(NormalizeIso8601(bad).has_value()) << "accepted '" << bad << "'";
  }
}

TEST(TimeUtilTest, NormalizedFormIsFixedWidthSoTextOrderIsTimeOrder) {
  std::string a = Norm("2026-11-22T09:59:59.999+00:00");
  std::string b = Norm("2026-11-22T05:00:00-05:00");  // 10:00:00 UTC
  std::string c = Norm("2026-11-22T10:00:00.001Z");
  ASSERT_TRUE(std::regex_match(a, kNormalized)) << a;
  ASSERT_TRUE(std::regex_match(b, kNormalized)) << b;
  ASSERT_TRUE(std::regex_match(c, kNormalized)) << c;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
}

TEST(TimeUtilTest, ResultIsFixedWidthOrNulloptAtTheYearLimits) {
  // An offset can push the UTC time out of years 0000..9999; the normalized form has a 4-digit
  // year, so such input must be rejected rather than produce "-001-…" or "10000-…".
  for (const char* edge : {"0000-01-01T00:00+01:00", "9999-12-31T23:59-01:00"}) {
    auto out = NormalizeIso8601(edge);
    if (out) {
      EXPECT_TRUE(std::regex_match(*out, kNormalized)) << edge << " -> " << *out;
    }
  }
  EXPECT_EQ(Norm("0000-01-01T00:00Z"), "<nullopt>");  // no year 0 (PostgreSQL has none)
  EXPECT_EQ(Norm("0001-01-01T00:00Z"), "0001-01-01T00:00:00.000Z");
  EXPECT_EQ(Norm("9999-12-31T23:59:59.999Z"), "9999-12-31T23:59:59.999Z");
}

TEST(TimeUtilTest, NowIsNormalizedAndCloseToTheSystemClock) {
  std::string now = NowIso8601();
  ASSERT_TRUE(std::regex_match(now, kNormalized)) << now;
  EXPECT_EQ(Norm(now), now);  // normalizing the normalized form changes nothing

  // Compare with the system clock's UTC date and time, to the minute (allowing a rollover).
  auto format_utc = [](std::chrono::system_clock::time_point tp) {
    std::time_t t = std::chrono::system_clock::to_time_t(tp);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M", &tm);
    return std::string(buf);
  };
  auto sys = std::chrono::system_clock::now();
  std::string minute = now.substr(0, 16);
  EXPECT_TRUE(minute == format_utc(sys) || minute == format_utc(sys - std::chrono::minutes(1)))
      << now << " vs " << format_utc(sys);
}

TEST(TimeUtilTest, NowNeverGoesBackwardsBetweenCalls) {
  std::string a = NowIso8601();
  std::string b = NowIso8601();
  EXPECT_LE(a, b);
}

}  // namespace
}  // namespace mqttspec
