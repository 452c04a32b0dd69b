// CoerceJson / CoerceText / WriteJson: the rules in registry/coerce.h, for every field type.

#include "registry/coerce.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace mqttspec::registry {
namespace {

Field F(FieldType type, bool nullable = true) {
  Field f;
  f.name = "f";
  f.type = type;
  f.nullable = nullable;
  return f;
}

// Coerces the JSON text `json` for a field of `type`.
Result<Value> Coerce(FieldType type, const std::string& json, bool nullable = true) {
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  EXPECT_FALSE(doc.HasParseError()) << "test JSON does not parse: " << json;
  return CoerceJson(F(type, nullable), doc);
}

::testing::AssertionResult IsInvalidValue(const Result<Value>& r) {
  if (r.ok()) return ::testing::AssertionFailure() << "accepted, expected invalid_value";
  if (r.error().code != ErrorCode::kInvalidValue) {
    return ::testing::AssertionFailure()
           << "error code " << ErrorCodeName(r.error().code) << ", expected invalid_value";
  }
  if (r.error().message.empty()) return ::testing::AssertionFailure() << "empty message";
  return ::testing::AssertionSuccess();
}

std::string Write(FieldType type, const Value& v) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WriteJson(F(type), v, w);
  return std::string(buf.GetString(), buf.GetSize());
}

template <typename T>
void ExpectValue(const Result<Value>& r, const T& expected, const std::string& what) {
  ASSERT_TRUE(r.ok()) << what << ": " << r.error().message;
  ASSERT_TRUE(std::holds_alternative<T>(r.value()))
      << what << ": wrong alternative " << r.value().index();
  EXPECT_EQ(std::get<T>(r.value()), expected) << what;
}

// --- integer ------------------------------------------------------------------------------------

TEST(CoerceIntegerTest, AcceptsJsonIntegers) {
  ExpectValue<int64_t>(Coerce(FieldType::kInteger, "42"), 42, "42");
  ExpectValue<int64_t>(Coerce(FieldType::kInteger, "-7"), -7, "-7");
  ExpectValue<int64_t>(Coerce(FieldType::kInteger, "0"), 0, "0");
  ExpectValue<int64_t>(Coerce(FieldType::kInteger, "9223372036854775807"),
                       std::numeric_limits<int64_t>::max(), "int64 max");
  ExpectValue<int64_t>(Coerce(FieldType::kInteger, "-9223372036854775808"),
                       std::numeric_limits<int64_t>::min(), "int64 min");
}

TEST(CoerceIntegerTest, AcceptsIntegralNumbers) {
  ExpectValue<int64_t>(Coerce(FieldType::kInteger, "42.0"), 42, "42.0");
  ExpectValue<int64_t>(Coerce(FieldType::kInteger, "-3.0"), -3, "-3.0");
  ExpectValue<int64_t>(Coerce(FieldType::kInteger, "1e3"), 1000, "1e3");
}

TEST(CoerceIntegerTest, AcceptsStringOfDecimalDigits) {
  ExpectValue<int64_t>(Coerce(FieldType::kInteger, R"("42")"), 42, "\"42\"");
  ExpectValue<int64_t>(Coerce(FieldType::kInteger, R"("0")"), 0, "\"0\"");
  ExpectValue<int64_t>(Coerce(FieldType::kInteger, R"("-12")"), -12, "\"-12\"");
}

TEST(CoerceIntegerTest, RejectsFractionalNumbers) {
  EXPECT_TRUE(IsInvalidValue(Coerce(FieldType::kInteger, "42.5")));
  EXPECT_TRUE(IsInvalidValue(Coerce(FieldType::kInteger, "-0.1")));
}

TEST(CoerceIntegerTest, RejectsOutOfRangeNumbers) {
  EXPECT_TRUE(IsInvalidValue(Coerce(FieldType::kInteger, "9223372036854775808")));
  EXPECT_TRUE(IsInvalidValue(Coerce(FieldType::kInteger, "18446744073709551615")));
  EXPECT_TRUE(IsInvalidValue(Coerce(FieldType::kInteger, "1e300")));
}

TEST(CoerceIntegerTest, RejectsNonNumericStrings) {
  for (const char* bad : {R"("")", R"("abc")", R"("4.2")", R"("42abc")", R"(" 42")", R"("42 ")",
                          R"("0x10")", R"("1e3")", R"("99999999999999999999")"}) {
    EXPECT_TRUE(IsInvalidValue(Coerce(FieldType::kInteger, bad))) << bad;
  }
}

TEST(CoerceIntegerTest, AcceptsSignedDigitStrings) {
  ExpectValue<int64_t>(Coerce(FieldType::kInteger, R"("+5")"), 5, "\"+5\"");
}

TEST(CoerceIntegerTest, RejectsStringsWithTwoSigns) {
  for (const char* bad : {R"("+-5")", R"("-+5")", R"("--5")", R"("++5")", R"("+")", R"("-")"}) {
    EXPECT_TRUE(IsInvalidValue(Coerce(FieldType::kInteger, bad))) << bad;
  }
}

TEST(CoerceIntegerTest, RejectsBooleansObjectsAndArrays) {
  EXPECT_TRUE(IsInvalidValue(Coerce(FieldType::kInteger, "true")));
  EXPECT_TRUE(IsInvalidValue(Coerce(FieldType::kInteger, "false")));
  EXPECT_TRUE(IsInvalidValue(Coerce(FieldType::kInteger, "{}")));
  EXPECT_TRUE(IsInvalidValue(Coerce(FieldType::kInteger, "[1]")));
}

// --- real ---------------------------------------------------------------------------------------

TEST(CoerceRealTest, AcceptsJsonNumbers) {
  ExpectValue<double>(Coerce(FieldType::kReal, "3.5"), 3.5, "3.5");
  ExpectValue<double>(Coerce(FieldType::kReal, "-0.25"), -0.25, "-0.25");
  ExpectValue<double>(Coerce(FieldType::kReal, "1e3"), 1000.0, "1e3");
}

TEST(CoerceRealTest, IntegersBecomeDoubles) {
  ExpectValue<double>(Coerce(FieldType::kReal, "7"), 7.0, "7");
  ExpectValue<double>(Coerce(FieldType::kReal, "-2"), -2.0, "-2");
}

TEST(CoerceRealTest, AcceptsNumericStrings) {
  ExpectValue<double>(Coerce(FieldType::kReal, R"("3.5")"), 3.5, "\"3.5\"");
  ExpectValue<double>(Coerce(FieldType::kReal, R"("-2")"), -2.0, "\"-2\"");
  ExpectValue<double>(Coerce(FieldType::kReal, R"("1e-2")"), 0.01, "\"1e-2\"");
}

TEST(CoerceRealTest, RejectsNonNumericAndNonFiniteStrings) {
  for (const char* bad :
       {R"("")", R"("abc")", R"("3.5x")", R"("nan")", R"("inf")", R"("-Infinity")", R"("1e999")"}) {
    EXPECT_TRUE(IsInvalidValue(Coerce(FieldType::kReal, bad))) << bad;
  }
}

TEST(CoerceRealTest, RejectsNumericStringsWithSurroundingWhitespace) {
  // As for integers: a numeric string is the number's text and nothing else.
  for (const char* bad : {R"(" 3.5")", R"("3.5 ")", R"("\t3.5")", R"("\n3")"}) {
    EXPECT_TRUE(IsInvalidValue(Coerce(FieldType::kReal, bad))) << bad;
  }
}

TEST(CoerceRealTest, RejectsHexadecimalStrings) {
  // "0x10" is not a decimal number (and the integer rule rejects it too).
  for (const char* bad : {R"("0x10")", R"("0x1p3")"}) {
    EXPECT_TRUE(IsInvalidValue(Coerce(FieldType::kReal, bad))) << bad;
  }
}

TEST(CoerceRealTest, RejectsBooleansObjectsAndArrays) {
  EXPECT_TRUE(IsInvalidValue(Coerce(FieldType::kReal, "true")));
  EXPECT_TRUE(IsInvalidValue(Coerce(FieldType::kReal, R"({"a":1})")));
  EXPECT_TRUE(IsInvalidValue(Coerce(FieldType::kReal, "[1.5]")));
}

// --- text ---------------------------------------------------------------------------------------

TEST(CoerceTextTest, AcceptsStringsVerbatim) {
  ExpectValue<std::string>(Coerce(FieldType::kText, R"("hello")"), "hello", "hello");
  ExpectValue<std::string>(Coerce(FieldType::kText, R"("")"), "", "empty");
  ExpectValue<std::string>(Coerce(FieldType::kText, R"("it's \"quoted\"; DROP TABLE x")"),
                           "it's \"quoted\"; DROP TABLE x", "quotes");
  ExpectValue<std::string>(Coerce(FieldType::kText, R"("caf\u00e9 \u2603")"),
                           "caf\xC3\xA9 \xE2\x98\x83", "unicode");
}

// PostgreSQL cannot store a NUL in text and SQLite's LIKE stops at one: refused everywhere.
TEST(CoerceTextTest, RejectsEmbeddedNul) {
  EXPECT_TRUE(IsInvalidValue(Coerce(FieldType::kText, R"("a\u0000b")")));
}

TEST(CoerceTextTest, RejectsNumbersBooleansObjectsAndArrays) {
  for (const char* bad : {"42", "4.5", "true", "false", "{}", R"(["a"])"}) {
    EXPECT_TRUE(IsInvalidValue(Coerce(FieldType::kText, bad))) << bad;
  }
}

// --- boolean ------------------------------------------------------------------------------------

TEST(CoerceBooleanTest, AcceptsTrueAndFalse) {
  ExpectValue<bool>(Coerce(FieldType::kBoolean, "true"), true, "true");
  ExpectValue<bool>(Coerce(FieldType::kBoolean, "false"), false, "false");
}

TEST(CoerceBooleanTest, AcceptsZeroAndOne) {
  ExpectValue<bool>(Coerce(FieldType::kBoolean, "1"), true, "1");
  ExpectValue<bool>(Coerce(FieldType::kBoolean, "0"), false, "0");
}

TEST(CoerceBooleanTest, AcceptsTrueAndFalseStrings) {
  ExpectValue<bool>(Coerce(FieldType::kBoolean, R"("true")"), true, "\"true\"");
  ExpectValue<bool>(Coerce(FieldType::kBoolean, R"("false")"), false, "\"false\"");
}

TEST(CoerceBooleanTest, RejectsOtherNumbersStringsAndContainers) {
  for (const char* bad :
       {"2", "-1", "0.5", R"("yes")", R"("TRUE")", R"("")", R"("t")", "{}", "[true]"}) {
    EXPECT_TRUE(IsInvalidValue(Coerce(FieldType::kBoolean, bad))) << bad;
  }
}

// --- timestamp ----------------------------------------------------------------------------------

TEST(CoerceTimestampTest, NormalizesIso8601ToUtcMillis) {
  ExpectValue<std::string>(Coerce(FieldType::kTimestamp, R"("2026-11-22T10:00:00Z")"),
                           "2026-11-22T10:00:00.000Z", "Z");
  ExpectValue<std::string>(Coerce(FieldType::kTimestamp, R"("2026-11-22T12:30:00+02:00")"),
                           "2026-11-22T10:30:00.000Z", "offset");
  ExpectValue<std::string>(Coerce(FieldType::kTimestamp, R"("2026-11-22")"),
                           "2026-11-22T00:00:00.000Z", "date");
  ExpectValue<std::string>(Coerce(FieldType::kTimestamp, R"("2026-11-22 10:00:00.5")"),
                           "2026-11-22T10:00:00.500Z", "space");
}

TEST(CoerceTimestampTest, RejectsInvalidTimestampStrings) {
  for (const char* bad : {R"("")", R"("yesterday")", R"("2026-02-30")", R"("2026-11-22T25:00:00Z")",
                          R"("22/11/2026")"}) {
    EXPECT_TRUE(IsInvalidValue(Coerce(FieldType::kTimestamp, bad))) << bad;
  }
}

TEST(CoerceTimestampTest, RejectsNonStrings) {
  for (const char* bad : {"1764000000000", "1.5", "true", "{}", "[]"}) {
    EXPECT_TRUE(IsInvalidValue(Coerce(FieldType::kTimestamp, bad))) << bad;
  }
}

// --- json ---------------------------------------------------------------------------------------

TEST(CoerceJsonFieldTest, StoresAnyValueAsSerializedText) {
  ExpectValue<std::string>(Coerce(FieldType::kJson, R"({"a": [1, 2, {"b": null}]})"),
                           R"({"a":[1,2,{"b":null}]})", "object");
  ExpectValue<std::string>(Coerce(FieldType::kJson, "[1, \"x\", true]"), R"([1,"x",true])",
                           "array");
  ExpectValue<std::string>(Coerce(FieldType::kJson, R"("text")"), R"("text")", "string");
  ExpectValue<std::string>(Coerce(FieldType::kJson, "42"), "42", "number");
  ExpectValue<std::string>(Coerce(FieldType::kJson, "false"), "false", "boolean");
  ExpectValue<std::string>(Coerce(FieldType::kJson, "{}"), "{}", "empty object");
}

// --- null, for every type -----------------------------------------------------------------------

class CoerceNullTest : public ::testing::TestWithParam<FieldType> {};

TEST_P(CoerceNullTest, NullOnNullableFieldIsNullValue) {
  auto r = Coerce(GetParam(), "null", /*nullable=*/true);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(IsNull(r.value()));
}

TEST_P(CoerceNullTest, NullOnNonNullableFieldIsInvalidValue) {
  EXPECT_TRUE(IsInvalidValue(Coerce(GetParam(), "null", /*nullable=*/false)));
}

INSTANTIATE_TEST_SUITE_P(AllTypes, CoerceNullTest,
                         ::testing::Values(FieldType::kInteger, FieldType::kReal, FieldType::kText,
                                           FieldType::kBoolean, FieldType::kTimestamp,
                                           FieldType::kJson),
                         [](const auto& info) { return std::string(FieldTypeName(info.param)); });

TEST(CoerceErrorTest, MessageNamesTheFieldAndItsType) {
  Field f = F(FieldType::kInteger);
  f.name = "age";
  rapidjson::Document doc;
  doc.Parse(R"("secret-value")");
  auto r = CoerceJson(f, doc);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("age"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("integer"), std::string::npos) << r.error().message;
}

// --- CoerceText (defaults from the configuration) -----------------------------------------------

TEST(CoerceTextDefaultTest, ParsesScalarTextForEachType) {
  ExpectValue<int64_t>(CoerceText(F(FieldType::kInteger), "42"), 42, "integer");
  ExpectValue<double>(CoerceText(F(FieldType::kReal), "2.5"), 2.5, "real");
  ExpectValue<std::string>(CoerceText(F(FieldType::kText), "active"), "active", "text");
  ExpectValue<std::string>(CoerceText(F(FieldType::kText), "42"), "42", "numeric text");
  ExpectValue<bool>(CoerceText(F(FieldType::kBoolean), "true"), true, "boolean");
  ExpectValue<bool>(CoerceText(F(FieldType::kBoolean), "false"), false, "boolean false");
  ExpectValue<std::string>(CoerceText(F(FieldType::kTimestamp), "2026-11-22T11:00:00+01:00"),
                           "2026-11-22T10:00:00.000Z", "timestamp");
}

TEST(CoerceTextDefaultTest, BooleanDefaultAcceptsZeroAndOne) {
  // A YAML `default: 1` reaches CoerceText as "1"; the boolean rule accepts 0/1.
  ExpectValue<bool>(CoerceText(F(FieldType::kBoolean), "1"), true, "\"1\"");
  ExpectValue<bool>(CoerceText(F(FieldType::kBoolean), "0"), false, "\"0\"");
}

TEST(CoerceTextDefaultTest, JsonDefaultIsParsedAndReserialized) {
  ExpectValue<std::string>(CoerceText(F(FieldType::kJson), R"({ "a" : 1 })"), R"({"a":1})",
                           "object");
  ExpectValue<std::string>(CoerceText(F(FieldType::kJson), "[1, 2]"), "[1,2]", "array");
}

TEST(CoerceTextDefaultTest, NonJsonTextForJsonFieldIsStoredAsJsonString) {
  ExpectValue<std::string>(CoerceText(F(FieldType::kJson), "hello"), R"("hello")", "bare text");
}

TEST(CoerceTextDefaultTest, RejectsTextThatDoesNotFitTheType) {
  EXPECT_TRUE(IsInvalidValue(CoerceText(F(FieldType::kInteger), "forty-two")));
  EXPECT_TRUE(IsInvalidValue(CoerceText(F(FieldType::kReal), "abc")));
  EXPECT_TRUE(IsInvalidValue(CoerceText(F(FieldType::kBoolean), "maybe")));
  EXPECT_TRUE(IsInvalidValue(CoerceText(F(FieldType::kTimestamp), "now-ish")));
}

// --- WriteJson ----------------------------------------------------------------------------------

TEST(WriteJsonTest, NullIsJsonNullForEveryType) {
  for (FieldType t : {FieldType::kInteger, FieldType::kReal, FieldType::kText, FieldType::kBoolean,
                      FieldType::kTimestamp, FieldType::kJson}) {
    EXPECT_EQ(Write(t, Value{}), "null") << FieldTypeName(t);
  }
}

TEST(WriteJsonTest, IntegerIsJsonInteger) {
  EXPECT_EQ(Write(FieldType::kInteger, Value{int64_t{42}}), "42");
  EXPECT_EQ(Write(FieldType::kInteger, Value{int64_t{-9}}), "-9");
  EXPECT_EQ(Write(FieldType::kInteger, Value{std::numeric_limits<int64_t>::max()}),
            "9223372036854775807");
}

TEST(WriteJsonTest, IntegralDoubleInIntegerFieldIsJsonInteger) {
  EXPECT_EQ(Write(FieldType::kInteger, Value{7.0}), "7");
}

TEST(WriteJsonTest, RealIsJsonNumber) {
  EXPECT_EQ(Write(FieldType::kReal, Value{3.5}), "3.5");
  EXPECT_EQ(Write(FieldType::kReal, Value{-0.25}), "-0.25");
}

TEST(WriteJsonTest, IntegerStoredInRealFieldIsWrittenAsDouble) {
  // SQLite hands back 2.0 in a REAL column as an integer.
  EXPECT_EQ(Write(FieldType::kReal, Value{int64_t{2}}), "2.0");
}

TEST(WriteJsonTest, NonFiniteRealIsNull) {
  EXPECT_EQ(Write(FieldType::kReal, Value{std::numeric_limits<double>::infinity()}), "null");
  EXPECT_EQ(Write(FieldType::kReal, Value{std::numeric_limits<double>::quiet_NaN()}), "null");
}

TEST(WriteJsonTest, BooleanIsTrueOrFalse) {
  EXPECT_EQ(Write(FieldType::kBoolean, Value{true}), "true");
  EXPECT_EQ(Write(FieldType::kBoolean, Value{false}), "false");
}

TEST(WriteJsonTest, BooleanStoredAsIntegerIsTrueOrFalse) {
  EXPECT_EQ(Write(FieldType::kBoolean, Value{int64_t{1}}), "true");
  EXPECT_EQ(Write(FieldType::kBoolean, Value{int64_t{0}}), "false");
}

TEST(WriteJsonTest, TextIsJsonStringWithEscapes) {
  EXPECT_EQ(Write(FieldType::kText, Value{std::string("hi")}), R"("hi")");
  EXPECT_EQ(Write(FieldType::kText, Value{std::string("a\"b\\c\n")}), R"("a\"b\\c\n")");
  EXPECT_EQ(Write(FieldType::kText, Value{std::string(R"({"a":1})")}), R"("{\"a\":1}")");
}

TEST(WriteJsonTest, TimestampIsIsoString) {
  EXPECT_EQ(Write(FieldType::kTimestamp, Value{std::string("2026-11-22T10:00:00.000Z")}),
            R"("2026-11-22T10:00:00.000Z")");
}

TEST(WriteJsonTest, JsonFieldIsEmbeddedAsJson) {
  EXPECT_EQ(Write(FieldType::kJson, Value{std::string(R"({"a":[1,2]})")}), R"({"a":[1,2]})");
  EXPECT_EQ(Write(FieldType::kJson, Value{std::string("[true,null]")}), "[true,null]");
  EXPECT_EQ(Write(FieldType::kJson, Value{std::string(R"("s")")}), R"("s")");
  EXPECT_EQ(Write(FieldType::kJson, Value{std::string("12")}), "12");
}

// RapidJSON 1.1.0 at full precision read these zeros as huge or tiny non-zero numbers.
TEST(WriteJsonTest, JsonFieldZeroWithAFarExponentStaysZero) {
  EXPECT_EQ(Write(FieldType::kJson, Value{std::string("[0e100,-0.0e-30,0E+99]")}),
            "[0.0,-0.0,0.0]");
  auto d = CoerceText(F(FieldType::kJson), R"({"a": 0.00000000000000000000000})");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(std::get<std::string>(d.value()), R"({"a":0.0})");
  rapidjson::Document::AllocatorType a;
  rapidjson::Value v = ToJson(F(FieldType::kJson), Value{std::string("0e38")}, a);
  ASSERT_TRUE(v.IsNumber());
  EXPECT_EQ(v.GetDouble(), 0.0);
}

TEST(WriteJsonTest, JsonFieldWithUnparsableTextIsWrittenAsString) {
  EXPECT_EQ(Write(FieldType::kJson, Value{std::string("{not json")}), R"("{not json")");
}

TEST(WriteJsonTest, CoercedValuesRoundTripThroughWriteJson) {
  struct Case {
    FieldType type;
    const char* in;
    const char* out;
  };
  for (const Case& c :
       {Case{FieldType::kInteger, "42", "42"}, Case{FieldType::kInteger, R"("42")", "42"},
        Case{FieldType::kReal, "1.25", "1.25"}, Case{FieldType::kText, R"("x")", R"("x")"},
        Case{FieldType::kBoolean, "1", "true"}, Case{FieldType::kBoolean, R"("false")", "false"},
        Case{FieldType::kTimestamp, R"("2026-11-22T10:00:00+00:00")",
             R"("2026-11-22T10:00:00.000Z")"},
        Case{FieldType::kJson, R"({"k": [1, {"z": "y"}]})", R"({"k":[1,{"z":"y"}]})"}}) {
    auto r = Coerce(c.type, c.in);
    ASSERT_TRUE(r.ok()) << c.in << ": " << r.error().message;
    EXPECT_EQ(Write(c.type, r.value()), c.out) << c.in;
  }
}

// --- JsonTypeName -------------------------------------------------------------------------------

TEST(JsonTypeNameTest, NamesEachJsonType) {
  auto name = [](const char* json) {
    rapidjson::Document doc;
    doc.Parse(json);
    return std::string(JsonTypeName(doc));
  };
  EXPECT_EQ(name("null"), "null");
  EXPECT_EQ(name("true"), "boolean");
  EXPECT_EQ(name("false"), "boolean");
  EXPECT_EQ(name("{}"), "object");
  EXPECT_EQ(name("[]"), "array");
  EXPECT_EQ(name(R"("s")"), "string");
  EXPECT_EQ(name("1.5"), "number");
  EXPECT_EQ(name("3"), "number");
}

}  // namespace
}  // namespace mqttspec::registry
