#pragma once
// JSON text before RapidJSON parses it. Every parse of JSON at full precision
// (rapidjson::kParseFullPrecisionFlag) goes through ExactNumbers first: client requests
// (protocol/request.cc), and stored json values, field defaults and logged rows through
// ParseExactJson (common/json_document.h).

#include <algorithm>
#include <charconv>
#include <string>
#include <string_view>
#include <system_error>

namespace mqttspec {

// The shortest text RapidJSON reads exactly as `value` (finite, not 0): at most 17 significant
// digits as an integer and an exponent ("12345678901234568e-316"), or, when `fixed` is allowed
// and shorter, in fixed notation ("1234567890.1234567").
inline std::string ShortestNumber(double value, bool fixed) {
  char buf[64];
  const auto sci = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  const std::string_view s(buf, static_cast<size_t>(sci.ptr - buf));  // -d.ddde±XX, shortest
  const size_t e = s.find('e'), dot = s.find('.');
  std::string out;
  for (char ch : s.substr(0, e))
    if (ch != '.') out += ch;
  int exponent = 0;
  const size_t exp_digits = e + 2;  // after 'e' and its sign
  std::from_chars(s.data() + exp_digits, s.data() + s.size(), exponent);
  if (s[e + 1] == '-') exponent = -exponent;
  const int frac_digits = dot < e ? static_cast<int>(e - dot - 1) : 0;
  out += "e" + std::to_string(exponent - frac_digits);
  if (fixed) {
    const auto f = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::fixed);
    if (f.ec == std::errc() && static_cast<size_t>(f.ptr - buf) < out.size())
      out.assign(buf, f.ptr);
  }
  return out;
}

// RapidJSON 1.1.0 (Debian 12), parsing at full precision, misreads numbers (fixed upstream after
// 1.1.0): a zero with a fraction or an exponent far from 0 ("0e100", "0." and 23 zeros), a value
// that underflows ("1e-330") or is beyond the largest double ("2e308") come out as arbitrary
// doubles, NaN among them; one with more than 17 significant digits may be a few units in the
// last place off. Such numbers — read exactly with std::from_chars — are rewritten before
// parsing: a zero or an underflow as "0e0" / "-0e0", an overflow as "1e999" (which RapidJSON
// refuses as too big, like "1e400"), a long one as its shortest exact form; padded with blanks to
// the same length, so offsets in parse errors do not move. A rewritten number ends in an exponent
// (after which nothing continues a number) or, for one that did not, is a fixed-notation number
// no longer than the original, so the parser splits the text where it did before: valid JSON
// stays valid, invalid JSON invalid. Integers are left alone (RapidJSON reads them exactly).
// Returns `text` itself, or `*patched` when a number was rewritten.
inline std::string_view ExactNumbers(std::string_view text, std::string* patched) {
  auto digit = [&](size_t i) { return i < text.size() && text[i] >= '0' && text[i] <= '9'; };
  bool copied = false, in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
      continue;
    }
    if (c != '-' && !digit(i)) continue;
    // A number: -?int(.frac)?([eE][+-]?exp)?. `magnitude`: a value that is not 0 lies in
    // [10^(magnitude-1), 10^magnitude). `significant`: digits from the first that is not 0.
    const size_t start = i;
    size_t j = start + (c == '-' ? 1 : 0);
    const size_t int_start = j;
    while (digit(j)) ++j;
    bool well_formed = j > int_start && (text[int_start] != '0' || j == int_start + 1);
    const bool int_is_zero = j == int_start + 1 && text[int_start] == '0';
    long long magnitude = int_is_zero ? 0 : static_cast<long long>(j - int_start);
    size_t significant = int_is_zero ? 0 : j - int_start;
    bool scaled = false, has_exponent = false;
    if (j < text.size() && text[j] == '.') {
      scaled = true;
      const size_t frac_start = ++j;
      bool leading = int_is_zero;
      for (; digit(j); ++j) {
        leading = leading && text[j] == '0';
        if (leading)
          --magnitude;
        else
          ++significant;
      }
      well_formed = well_formed && j > frac_start;
    }
    if (j < text.size() && (text[j] == 'e' || text[j] == 'E')) {
      scaled = has_exponent = true;
      ++j;
      const bool minus = j < text.size() && text[j] == '-';
      if (j < text.size() && (text[j] == '+' || text[j] == '-')) ++j;
      const size_t exp_start = j;
      long long exponent = 0;
      for (; digit(j); ++j) exponent = std::min(exponent * 10 + (text[j] - '0'), 1000000000LL);
      well_formed = well_formed && j > exp_start;
      magnitude += minus ? -exponent : exponent;
    }
    i = j - 1;  // go on after the number
    if (!well_formed || !scaled) continue;
    double value = 0;
    const auto parsed = std::from_chars(text.data() + start, text.data() + j, value);
    if (parsed.ptr != text.data() + j) continue;
    std::string exact;
    if (parsed.ec == std::errc::result_out_of_range)
      exact = std::string(c == '-' ? "-" : "") + (magnitude > 0 ? "1e999" : "0e0");
    else if (parsed.ec == std::errc() && value == 0)
      exact = c == '-' ? "-0e0" : "0e0";
    else if (parsed.ec == std::errc() && significant > 17)
      exact = ShortestNumber(value, !has_exponent);
    else
      continue;
    if (exact.size() > j - start) continue;  // cannot be: see ShortestNumber; "2e308", "1e-400"
    if (!copied) patched->assign(text);
    copied = true;
    patched->replace(start, j - start, exact + std::string(j - start - exact.size(), ' '));
  }
  return copied ? std::string_view(*patched) : text;
}

// The offset of the first "\\uDC00"–"\\uDFFF" escape in a string of `text` that does not follow
// a high surrogate's escape, or npos. RapidJSON 1.1.0 (Debian 12), even validating the encoding,
// accepts such a lone low surrogate and stores it as three bytes that are not UTF-8 (fixed
// upstream after 1.1.0), which would then travel into answers, the database and notifications;
// a lone high surrogate it refuses itself. Client JSON is checked with this before it is parsed.
inline size_t LoneLowSurrogate(std::string_view text) {
  auto hex4 = [&](size_t i) -> int {  // the 4 hex digits at i, or -1
    if (i + 4 > text.size()) return -1;
    int v = 0;
    for (size_t k = i; k < i + 4; ++k) {
      const char c = text[k];
      const int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
      if (d < 0) return -1;
      v = v * 16 + d;
    }
    return v;
  };
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (!in_string) {
      in_string = c == '"';
      continue;
    }
    if (c == '"') {
      in_string = false;
      continue;
    }
    if (c != '\\') continue;
    if (i + 1 >= text.size() || text[i + 1] != 'u') {
      ++i;  // a one-character escape
      continue;
    }
    const int cp = hex4(i + 2);
    if (cp >= 0xDC00 && cp <= 0xDFFF) return i;
    if (cp >= 0xD800 && cp <= 0xDBFF && i + 7 < text.size() && text[i + 6] == '\\' &&
        text[i + 7] == 'u') {
      const int low = hex4(i + 8);
      if (low >= 0xDC00 && low <= 0xDFFF) i += 6;  // the pair's low half is no lone one
    }
    if (cp >= 0) i += 5;
  }
  return std::string_view::npos;
}

}  // namespace mqttspec
