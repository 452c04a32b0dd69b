// fuzz_config: arbitrary text → server::ParseConfig. Besides crashes, leaks and undefined
// behaviour it stops on:
//   - an error that is not invalid_value, or whose message names neither a key
//     ("broker.port: …", "models[0].fields[1].type: …", an unknown key verbatim) nor, for text
//     that is not YAML, the YAML syntax ("YAML syntax: …" only when yaml-cpp cannot load it);
//   - a configuration accepted with values outside what the parser promises (ports, QoS levels,
//     limits, models that are not valid models).
#include <yaml-cpp/yaml.h>

#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_common.h"
#include "server/config.h"

namespace mqttspec::fuzz {
namespace {

// The top-level sections, as the parser itself lists them for an unknown key — a list kept
// here went stale when sections were added (CI found "cluster: expected a mapping" rejected).
// A message naming a key starts with one of them.
std::vector<std::string> Sections() {
  auto probe = server::ParseConfig("fuzz_unknown_section: 1");
  const std::string& m = probe.error().message;
  const std::string mark = "(known: ";
  const size_t from = m.find(mark);
  if (from == std::string::npos) Fail("the parser's unknown-key message lists no keys", m);
  std::vector<std::string> out;
  std::string_view rest(m);
  rest.remove_prefix(from + mark.size());
  rest = rest.substr(0, rest.find(')'));
  while (!rest.empty()) {
    const size_t comma = rest.find(", ");
    out.emplace_back(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 2);
  }
  out.emplace_back("config");  // errors about the document as a whole
  return out;
}

bool NamesAKey(std::string_view message) {
  static const std::vector<std::string> sections = Sections();
  if (message.find(": unknown key (known: ") != std::string_view::npos) return true;
  for (std::string_view s : sections) {
    if (message.size() > s.size() && message.substr(0, s.size()) == s) {
      const char next = message[s.size()];
      if (next == '.' || next == '[' || message.substr(s.size(), 2) == ": ") return true;
    }
  }
  return false;
}

bool LoadsAsYaml(const std::string& text) {
  try {
    YAML::Load(text);
    return true;
  } catch (const YAML::Exception&) {
    return false;
  }
}

void CheckAccepted(const server::Config& c, const std::string& story) {
  const server::BrokerConfig& b = c.broker;
  FUZZ_CHECK(b.mode == "embedded" || b.mode == "external", story);
  FUZZ_CHECK(b.port >= 0 && b.port <= 65535 && b.websocket_port >= 0 && b.websocket_port <= 65535 &&
                 b.tls.port >= 1 && b.tls.port <= 65535,
             story);
  FUZZ_CHECK(b.reconnect.min_s >= 0.1 && b.reconnect.max_s >= b.reconnect.min_s, story);
  for (int q : {c.qos.request, c.qos.response, c.qos.notification})
    FUZZ_CHECK(q >= 0 && q <= 2, story);
  FUZZ_CHECK(c.database.driver == "sqlite" || c.database.driver == "postgres", story);
  FUZZ_CHECK(c.database.driver != "postgres" || !c.database.url.empty(), story);
  FUZZ_CHECK(!c.topic_prefix.empty() && c.topic_prefix.find_first_of("+#") == std::string::npos,
             story);
  FUZZ_CHECK(c.limits.max_rows >= 1 && c.limits.max_filters >= 1 && c.workers >= 0, story);
  for (const registry::ModelPtr& m : c.models) {
    FUZZ_CHECK(m != nullptr, story);
    FUZZ_CHECK(registry::IsIdentifier(m->schema()) && registry::IsIdentifier(m->entity()), story);
    FUZZ_CHECK(m->primary().primary && !m->primary().nullable, story);
    for (const registry::Field& f : m->fields()) {
      FUZZ_CHECK(registry::IsIdentifier(f.name), story);
      if (f.default_value && !f.default_value->now)
        FUZZ_CHECK(HasFieldForm(f, f.default_value->literal) || IsNull(f.default_value->literal),
                   "default of " + f.name + ": " + Show(f.default_value->literal) + "\n" + story);
    }
  }
  for (const server::PluginConfig& p : c.plugins) FUZZ_CHECK(!p.path.empty(), story);
}

}  // namespace
}  // namespace mqttspec::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mqttspec::fuzz;  // NOLINT: the fuzz helpers
  const std::string text(AsText(data, size));
  auto config = mqttspec::server::ParseConfig(text);
  const std::string story = "config text:\n" + text.substr(0, 3000);
  if (config.ok()) {
    CheckAccepted(config.value(), story);
    return 0;
  }
  const mqttspec::Error& e = config.error();
  const std::string said = "error: " + e.message + "\n" + story;
  FUZZ_CHECK(e.code == mqttspec::ErrorCode::kInvalidValue, said);
  // An unknown top-level key is echoed as "<key>: unknown key …", and the key may itself read
  // "YAML syntax" (found by this target in CI): that is a named key, not a syntax error.
  if (e.message.rfind("YAML syntax: ", 0) == 0 && !NamesAKey(e.message)) {
    FUZZ_CHECK(!LoadsAsYaml(text), "YAML that loads is reported as a syntax error\n" + said);
  } else {
    FUZZ_CHECK(NamesAKey(e.message), "the message names no key\n" + said);
  }
  return 0;
}
