// audit_log: After create, update and delete, writes one audit row into the database (a model
// this plugin registers, default public.audit_log): when, which client and user, which operation
// on which record, and the row as the client saw it (json). The audit row is written through the
// host, with the same registry checks and bound parameters as any client write.
//
// The audit model is registered with client_access none: no client reads, forges, changes or
// deletes audit rows through any front, and none subscribes to them; rows are written only here,
// through the host. Option client_access: read_only lets clients read them (restrict that to
// admins with rbac: {operations: read, entity: audit_log}).
//
// Options: entity (default audit_log, in schema public), client_access (none | read_only,
// default none).

#include <mqttspec/plugin.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>

namespace {

std::string NowIso() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

void WriteValue(const mqttspec::Value& v, rapidjson::Writer<rapidjson::StringBuffer>& w) {
  switch (v.index()) {
    case 0: w.Null(); break;
    case 1: w.Bool(std::get<bool>(v)); break;
    case 2: w.Int64(std::get<int64_t>(v)); break;
    case 3: w.Double(std::get<double>(v)); break;
    default: w.String(std::get<std::string>(v).c_str()); break;
  }
}

std::string RowJson(mqttspec::HookContext& ctx) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  auto* rows = ctx.result();
  if (rows && !rows->empty()) {
    auto columns = ctx.result_columns();
    for (size_t i = 0; i < columns.size() && i < rows->front().size(); ++i) {
      w.Key(columns[i].c_str());
      WriteValue(rows->front()[i], w);
    }
  }
  w.EndObject();
  return buf.GetString();
}

std::string RecordId(mqttspec::HookContext& ctx) {
  if (const mqttspec::Value* key = ctx.record_id()) {
    if (const auto* i = std::get_if<int64_t>(key)) return std::to_string(*i);
    if (const auto* s = std::get_if<std::string>(key)) return *s;
  }
  // A create: the new row's primary key.
  const mqttspec::ModelInfo* m = ctx.model();
  auto* rows = ctx.result();
  if (!m || !rows || rows->empty()) return "";
  auto columns = ctx.result_columns();
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i] != m->primary_key) continue;
    const auto& v = rows->front()[i];
    if (const auto* n = std::get_if<int64_t>(&v)) return std::to_string(*n);
    if (const auto* s = std::get_if<std::string>(&v)) return *s;
  }
  return "";
}

}  // namespace

MQTTSPEC_PLUGIN_EXPORT int mqttspec_plugin_abi_version() { return MQTTSPEC_PLUGIN_ABI_VERSION; }

MQTTSPEC_PLUGIN_EXPORT bool mqttspec_plugin_init(mqttspec::PluginHost& host,
                                                 const mqttspec::PluginOptions& options) {
  std::string entity = "audit_log", access = "none";
  for (const auto& [key, value] : options) {
    if (key == "entity") {
      entity = value;
    } else if (key == "client_access") {
      if (value != "none" && value != "read_only") {
        host.Log("error",
                 "audit_log: client_access must be none or read_only (audit rows are "
                 "written by the plugin only)");
        return false;
      }
      access = value;
    } else {
      host.Log("error", "audit_log: unknown option '" + key + "'");
      return false;
    }
  }
  mqttspec::ModelInfo model{"public",
                            entity,
                            "id",
                            {
                                {"id", "integer", false, true, true},
                                {"at", "timestamp", false, false, false},
                                {"client_id", "text", false, false, false},
                                {"user_id", "text", true, false, false},
                                {"operation", "text", false, false, false},
                                {"entity", "text", false, false, false},
                                {"record_id", "text", true, false, false},
                                {"data", "json", true, false, false},
                            },
                            access};
  std::string error;
  if (!host.RegisterModel(model, &error)) {
    host.Log("error", "audit_log: cannot register public." + entity + ": " + error);
    return false;
  }
  auto audit = [&host, entity](mqttspec::HookContext& ctx) {
    if (ctx.entity() == entity && ctx.schema() == "public")
      return mqttspec::HookResult::kContinue;  // never audit the audit
    auto user = ctx.client().metadata.find("user_id");
    std::string why;
    bool ok = host.Insert(
        "public", entity,
        {{"at", mqttspec::Value{NowIso()}},
         {"client_id", mqttspec::Value{ctx.client().id}},
         {"user_id",
          user == ctx.client().metadata.end() ? mqttspec::Value{} : mqttspec::Value{user->second}},
         {"operation", mqttspec::Value{std::string(ctx.operation())}},
         {"entity", mqttspec::Value{std::string(ctx.schema()) + "." + std::string(ctx.entity())}},
         {"record_id", mqttspec::Value{RecordId(ctx)}},
         {"data", mqttspec::Value{RowJson(ctx)}}},
        &why);
    if (!ok) throw std::runtime_error("audit_log: cannot write the audit row: " + why);
    return mqttspec::HookResult::kContinue;
  };
  using mqttspec::HookType;
  host.RegisterHook(HookType::kAfterCreate, audit);
  host.RegisterHook(HookType::kAfterUpdate, audit);
  host.RegisterHook(HookType::kAfterDelete, audit);
  return true;
}
