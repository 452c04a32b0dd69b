// jwt_auth: BeforeConnect hook that accepts only clients presenting a valid HS256 JWT in the MQTT
// username or password, and puts its claims into the client's metadata for later hooks:
//   user_id   ← "user_id", else "sub"
//   tenant_id ← "tenant_id"
//   roles     ← "roles" (array, or a single string), comma-joined
// Refused (CONNECT "not authorised"): no token, bad signature, another algorithm than HS256,
// an expired token (exp), a token not yet valid (nbf), or no exp when require_exp is true.
//
// Options: secret (required), token_from: username | password | either (default either),
//          require_exp: true | false (default true), leeway_s (default 0).

#include <jwt.h>
#include <mqttspec/plugin.h>
#include <rapidjson/document.h>

#include <cerrno>
#include <ctime>
#include <memory>
#include <string>

namespace {

struct Settings {
  std::string secret;
  std::string token_from = "either";
  bool require_exp = true;
  long leeway_s = 0;
};

bool LooksLikeJwt(const std::string& s) {
  size_t first = s.find('.');
  return first != std::string::npos && s.find('.', first + 1) != std::string::npos;
}

std::string Claim(jwt_t* jwt, const char* name) {
  errno = 0;
  const char* s = jwt_get_grant(jwt, name);
  if (s) return s;
  long v = jwt_get_grant_int(jwt, name);
  if (errno == 0) return std::to_string(v);
  return "";
}

std::string Roles(jwt_t* jwt) {
  char* json = jwt_get_grants_json(jwt, "roles");
  if (!json) return "";
  std::unique_ptr<char, decltype(&free)> owned(json, free);
  rapidjson::Document doc;
  doc.Parse(json);
  std::string out;
  if (doc.IsString()) return doc.GetString();
  if (!doc.IsArray()) return "";
  for (const auto& r : doc.GetArray()) {
    if (!r.IsString()) continue;
    if (!out.empty()) out += ',';
    out += r.GetString();
  }
  return out;
}

mqttspec::HookResult Authenticate(const Settings& cfg, mqttspec::HookContext& ctx) {
  mqttspec::ClientInfo& client = ctx.client();
  std::string token;
  if (cfg.token_from != "password" && LooksLikeJwt(client.username))
    token = client.username;
  else if (cfg.token_from != "username" && LooksLikeJwt(client.password))
    token = client.password;
  if (token.empty()) return ctx.Abort("no JWT in the username or password");
  jwt_t* raw = nullptr;
  int rc =
      jwt_decode(&raw, token.c_str(), reinterpret_cast<const unsigned char*>(cfg.secret.data()),
                 static_cast<int>(cfg.secret.size()));
  std::unique_ptr<jwt_t, decltype(&jwt_free)> jwt(raw, jwt_free);
  if (rc != 0 || !jwt) return ctx.Abort("invalid token");
  if (jwt_get_alg(jwt.get()) != JWT_ALG_HS256) return ctx.Abort("token must be signed with HS256");
  const long now = static_cast<long>(std::time(nullptr));
  errno = 0;
  long exp = jwt_get_grant_int(jwt.get(), "exp");
  if (errno != 0) {
    if (cfg.require_exp) return ctx.Abort("token has no expiry");
  } else if (now > exp + cfg.leeway_s) {
    return ctx.Abort("token expired");
  }
  errno = 0;
  long nbf = jwt_get_grant_int(jwt.get(), "nbf");
  if (errno == 0 && now + cfg.leeway_s < nbf) return ctx.Abort("token not yet valid");
  std::string user = Claim(jwt.get(), "user_id");
  if (user.empty()) user = Claim(jwt.get(), "sub");
  // A token that came as the username is a credential: the client's username becomes the
  // verified user id, so the token is neither kept nor shown (admin API, hooks, logs).
  if (token == client.username) client.username = user;
  client.metadata["user_id"] = user;
  client.metadata["tenant_id"] = Claim(jwt.get(), "tenant_id");
  client.metadata["roles"] = Roles(jwt.get());
  return mqttspec::HookResult::kContinue;
}

}  // namespace

MQTTSPEC_PLUGIN_EXPORT int mqttspec_plugin_abi_version() { return MQTTSPEC_PLUGIN_ABI_VERSION; }

MQTTSPEC_PLUGIN_EXPORT bool mqttspec_plugin_init(mqttspec::PluginHost& host,
                                                 const mqttspec::PluginOptions& options) {
  auto cfg = std::make_shared<Settings>();
  for (const auto& [key, value] : options) {
    if (key == "secret")
      cfg->secret = value;
    else if (key == "token_from")
      cfg->token_from = value;
    else if (key == "require_exp")
      cfg->require_exp = value != "false";
    else if (key == "leeway_s")
      cfg->leeway_s = std::strtol(value.c_str(), nullptr, 10);
    else {
      host.Log("error", "jwt_auth: unknown option '" + key + "'");
      return false;
    }
  }
  if (cfg->secret.empty()) {
    host.Log("error", "jwt_auth: option 'secret' is required");
    return false;
  }
  if (cfg->token_from != "username" && cfg->token_from != "password" &&
      cfg->token_from != "either") {
    host.Log("error", "jwt_auth: token_from must be username, password or either");
    return false;
  }
  host.RegisterHook(mqttspec::HookType::kBeforeConnect,
                    [cfg](mqttspec::HookContext& ctx) { return Authenticate(*cfg, ctx); });
  return true;
}
