// Request parsing (protocol::ParseRequest) on payloads the fuzz targets found mishandled
// (fuzz/README.md): numbers RapidJSON 1.1.0 misreads, the text echoed in errors, keys given twice.
#include "protocol/request.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cmath>
#include <string>

#include "protocol/json_read.h"
#include "protocol/render.h"
#include "tests/unit/test_builders.h"

namespace mqttspec::protocol {
namespace {

using namespace mqttspec::testing;  // NOLINT: the shared test builders
using registry::FieldType;

class RequestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(models_
                    .Register(MustModel("public", "things",
                                        {AutoId(), MakeField("r", FieldType::kReal),
                                         MakeField("t", FieldType::kText)},
                                        "id"))
                    .ok());
  }

  Status Parse(const std::string& payload, Request* req) {
    return ParseRequest(payload, models_, ParseLimits{}, req);
  }

  // The value `json` becomes as the real field r of a create.
  Value CreatedR(const std::string& json) {
    Request req;
    auto st = Parse(R"({"operation":"create","entity":"things","data":{"r":)" + json + "}}", &req);
    EXPECT_TRUE(st.ok()) << json << ": " << (st.ok() ? "" : st.error().message);
    if (!st.ok() || req.records.size() != 1 || req.records[0].empty()) return Value{};
    return req.records[0][0].value;
  }

  registry::ModelRegistry models_;
};

// Echoed client text (in error messages, also the admin API's, which allows 256 bytes) is cut
// at a character boundary and never carries control characters.
TEST(EchoTest, CutsAtACharacterBoundaryAndReplacesControlCharacters) {
  EXPECT_EQ(Echo("abc"), "abc");
  EXPECT_EQ(Echo("a\nb\x01"), "a?b?");
  const std::string euros = [] {
    std::string s;
    for (int i = 0; i < 100; ++i) s += "\u20ac";  // 3 bytes each
    return s;
  }();
  EXPECT_EQ(Echo(euros), euros.substr(0, 63) + "…");        // 21 whole characters
  EXPECT_EQ(Echo(euros, 256), euros.substr(0, 255) + "…");  // 85
  EXPECT_EQ(Echo(euros, 1000), euros);
}

TEST_F(RequestTest, ZeroWrittenWithAFarExponentOrManyDecimalsIsZero) {
  // RapidJSON 1.1.0 at full precision made these huge or tiny non-zero numbers.
  for (const char* zero :
       {"0e100", "0E+99", "0.0e-30", "0.00000000000000000000000", "0e38", "0.000e300", "0e400"}) {
    Value v = CreatedR(zero);
    ASSERT_TRUE(std::holds_alternative<double>(v)) << zero;
    EXPECT_EQ(std::get<double>(v), 0.0) << zero;
  }
  Value negative = CreatedR("-0e100");
  ASSERT_TRUE(std::holds_alternative<double>(negative));
  EXPECT_EQ(std::get<double>(negative), 0.0);
  EXPECT_TRUE(std::signbit(std::get<double>(negative)));
  // Other numbers, and the same text inside strings, are untouched.
  EXPECT_EQ(std::get<double>(CreatedR("1e100")), 1e100);
  EXPECT_EQ(std::get<double>(CreatedR("0.30000000000000004")), 0.30000000000000004);
  Request req;
  ASSERT_TRUE(
      Parse(R"({"operation":"create","entity":"things","data":{"t":"0e100 \"0.0e-30"}})", &req)
          .ok());
  EXPECT_EQ(req.records[0][0].value, Value{std::string("0e100 \"0.0e-30")});
  // Invalid numbers stay invalid.
  for (const char* bad : {"00e1", "0e", "0.e5", "-0.", "0e+", "0e0e41", "0.0e5e5", "0e1.5"}) {
    Request r;
    auto st = Parse(
        R"({"operation":"create","entity":"things","data":{"r":)" + std::string(bad) + "}}", &r);
    ASSERT_FALSE(st.ok()) << bad;
    EXPECT_EQ(st.error().code, ErrorCode::kInvalidJson) << bad;
  }
}

TEST_F(RequestTest, NumberBelowTheSmallestDoubleIsZero) {
  for (const char* tiny : {"1e-330", "1e-324", "2e-324", "0.0000000000000000000000000000001e-300",
                           "-1e-400", "12345678901234567890123e-347"}) {
    Value v = CreatedR(tiny);
    ASSERT_TRUE(std::holds_alternative<double>(v)) << tiny;
    EXPECT_EQ(std::get<double>(v), 0.0) << tiny;
  }
  EXPECT_EQ(std::get<double>(CreatedR("2.5e-324")), 4.9406564584124654e-324);  // the least
  EXPECT_EQ(std::get<double>(CreatedR("1.5e-310")), 1.5e-310);
}

TEST_F(RequestTest, NumberBeyondTheLargestDoubleIsInvalidJson) {
  for (const char* huge :
       {"2e308", "-9e308", "0.2e309", "1234567890123456789012345678901234567890e270", "1e400"}) {
    Request req;
    auto st = Parse(
        R"({"operation":"create","entity":"things","data":{"r":)" + std::string(huge) + "}}", &req);
    ASSERT_FALSE(st.ok()) << huge;
    EXPECT_EQ(st.error().code, ErrorCode::kInvalidJson) << huge;
    EXPECT_NE(st.error().message.find("offset 52"), std::string::npos) << st.error().message;
  }
  EXPECT_EQ(std::get<double>(CreatedR("1.7976931348623157e308")), 1.7976931348623157e308);
  EXPECT_EQ(std::get<double>(CreatedR("179769313486231570e291")), 1.7976931348623157e308);
}

// RapidJSON 1.1.0 accepts a lone low surrogate escape and stores bytes that are not UTF-8, which
// the answer then echoed (fuzz_request: an id "…\udddd…" made an unreadable error answer).
TEST_F(RequestTest, LoneLowSurrogateEscapeIsInvalidJson) {
  for (const char* bad : {R"({"id":"a\udddd","operation":"read","entity":"things"})",
                          R"({"operation":"create","entity":"things","data":{"t":"x\uDC00"}})",
                          R"({"operation":"create","entity":"things","data":{"t":"\udc00\udc00"}})",
                          R"({"operation":"create","entity":"things","data":{"t\uDFFF":1}})"}) {
    Request req;
    auto st = Parse(bad, &req);
    ASSERT_FALSE(st.ok()) << bad;
    EXPECT_EQ(st.error().code, ErrorCode::kInvalidJson) << bad;
    EXPECT_NE(st.error().message.find("low surrogate"), std::string::npos) << st.error().message;
    EXPECT_EQ(RenderError(req.id_json, st.error()).find('\xed'), std::string::npos);
  }
  // A pair, an escaped backslash before "udc00", and other escapes stay valid.
  for (const char* good :
       {R"({"operation":"create","entity":"things","data":{"t":"\ud83d\ude00"}})",
        R"({"operation":"create","entity":"things","data":{"t":"\\udc00"}})",
        R"({"operation":"create","entity":"things","data":{"t":"\"\u00e9\n"}})"}) {
    Request req;
    auto st = Parse(good, &req);
    EXPECT_TRUE(st.ok()) << good << ": " << (st.ok() ? "" : st.error().message);
  }
}

TEST_F(RequestTest, NumberWithMoreThan17DigitsIsTheNearestDouble) {
  EXPECT_EQ(std::get<double>(CreatedR("1000.202730002000100990300000E-17")), 1.000202730002e-14);
  EXPECT_EQ(std::get<double>(CreatedR("900026303060003000.0008200E-60")), 9.0002630306000292e-43);
  EXPECT_EQ(std::get<double>(CreatedR("298140870000000007000100E-230")), 2.9814086999999999e-207);
  EXPECT_EQ(std::get<double>(CreatedR("0.30000000000000004441")), 0.30000000000000004);
}

TEST_F(RequestTest, ZeroFilterValueWithAFarExponentMatchesZero) {
  Request req;
  ASSERT_TRUE(Parse(R"({"operation":"read","entity":"things","options":{"filters":[
                       {"column":"r","operator":"eq","value":0e100}]}})",
                    &req)
                  .ok());
  ASSERT_EQ(req.query.filters.size(), 1u);
  EXPECT_EQ(req.query.filters[0].cond.values.at(0), Value{0.0});
}

// An answer must be valid UTF-8 JSON even when a message echoes client text cut short.
void ExpectValidUtf8Answer(const Error& e) {
  const std::string answer = RenderError("\"x\"", e);
  rapidjson::Document d;
  d.Parse<rapidjson::kParseValidateEncodingFlag>(answer.c_str(), answer.size());
  EXPECT_FALSE(d.HasParseError()) << "not valid UTF-8 JSON: " << answer;
}

TEST_F(RequestTest, ErrorsCutEchoedTextAtACharacterBoundary) {
  const std::string long_name = std::string(63, 'a') + "\xC3\xA9" + "bc";  // é at bytes 63–64
  for (const std::string& payload :
       {R"({"operation":"read","entity":")" + long_name + R"("})",
        R"({"operation":")" + long_name + R"("})",
        R"({"operation":"read","entity":"things","options":{")" + long_name + R"(":1}})",
        R"({"operation":"read","entity":"things","options":{"filters":[{"column":")" + long_name +
            R"(","operator":"eq","value":1}]}})"}) {
    Request req;
    auto st = Parse(payload, &req);
    ASSERT_FALSE(st.ok()) << payload;
    EXPECT_NE(st.error().message.find(std::string(63, 'a') + "…"), std::string::npos)
        << st.error().message;
    ExpectValidUtf8Answer(st.error());
  }
}

TEST_F(RequestTest, DataGivingAFieldTwiceIsRefused) {
  for (const char* payload :
       {R"({"operation":"create","entity":"things","data":{"t":"a","t":"b"}})",
        R"({"operation":"create","entity":"things","data":[{"t":"a"},{"r":1,"r":2}]})",
        R"({"operation":"update","entity":"things","record_id":1,"data":{"t":"a","t":"b"}})"}) {
    Request req;
    auto st = Parse(payload, &req);
    ASSERT_FALSE(st.ok()) << payload;
    EXPECT_EQ(st.error().code, ErrorCode::kInvalidMessage) << payload;
    EXPECT_NE(st.error().message.find("given twice"), std::string::npos) << st.error().message;
  }
}

// Requests are parsed into a LocalDocument (common/json_document.h): the first 2 KiB of the DOM
// inside it, the rest in malloc'd chunks. A batch far beyond both reads as it was sent.
TEST_F(RequestTest, ABatchLargerThanTheParsersInlineBufferReadsWhole) {
  std::string payload = R"({"operation":"create","entity":"things","data":[)";
  constexpr int kRecords = 1000;  // the most a create may carry; ~50 KiB of DOM
  for (int i = 0; i < kRecords; ++i)
    payload +=
        fmt::format(R"({}{{"r":{}.5,"t":"record number {} with some text"}})", i ? "," : "", i, i);
  payload += "]}";
  Request req;
  auto st = Parse(payload, &req);
  ASSERT_TRUE(st.ok()) << st.error().message;
  ASSERT_EQ(req.records.size(), static_cast<size_t>(kRecords));
  for (int i : {0, 1, 500, kRecords - 1}) {
    const auto& rec = req.records[static_cast<size_t>(i)];
    ASSERT_EQ(rec.size(), 2u);
    EXPECT_EQ(rec[0].value, Value{i + 0.5});
    EXPECT_EQ(rec[1].value, Value{fmt::format("record number {} with some text", i)});
  }
}

}  // namespace
}  // namespace mqttspec::protocol
