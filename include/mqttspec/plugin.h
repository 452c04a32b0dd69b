#pragma once
// mqttspec hook plugin API — the only header a hook plugin needs.
//
// A plugin is a shared library listed under `hooks.plugins` in the mqttspec configuration. At
// start-up mqttspec loads it, checks `mqttspec_plugin_abi_version()` against
// MQTTSPEC_PLUGIN_ABI_VERSION, and calls `mqttspec_plugin_init(host, options)`, where the plugin
// registers hooks (and, if it wants, models). A plugin that fails to load or whose init returns
// false stops start-up with a clear message.
//
//   #include <mqttspec/plugin.h>
//   MQTTSPEC_PLUGIN_EXPORT int mqttspec_plugin_abi_version() {
//     return MQTTSPEC_PLUGIN_ABI_VERSION;
//   }
//   MQTTSPEC_PLUGIN_EXPORT bool mqttspec_plugin_init(mqttspec::PluginHost& host,
//                                                    const mqttspec::PluginOptions& options) {
//     host.RegisterHook(mqttspec::HookType::kBeforeDelete, [](mqttspec::HookContext& ctx) {
//       if (ctx.client().metadata["role"] != "admin") return ctx.Abort("delete requires admin");
//       return mqttspec::HookResult::kContinue;
//     });
//     return true;
//   }
//
// Init runs once per process that serves (in embedded mode: inside the broker; mqttspecd only
// checks that the library loads and has the right ABI). A plugin may open files, start threads
// or insert rows there.
//
// Build out of tree with CMake: find_package(mqttspec REQUIRED) and link mqttspec::plugin.
//
// Threading: hooks run on mqttspec's worker threads, several at once for different clients (the
// requests of one client run one at a time, in order). One request's hooks need not all run on
// the same thread: a write's After hooks run once it committed, on whichever worker continues the
// request — keep per-request state in the context, not in thread-locals. Connect hooks in
// embedded mode run on the broker's thread while it authenticates the client: keep them fast (no
// I/O). A hook must be thread-safe with respect to its own state.
//
// Safety: everything a hook adds — filter columns, data fields, values — goes through the same
// model registry checks and type coercion as client input; a hook cannot put text into SQL.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

// 2: ModelInfo::client_access; hooks return HookResult (Continue or Stop).
#define MQTTSPEC_PLUGIN_ABI_VERSION 2
#define MQTTSPEC_PLUGIN_EXPORT extern "C" __attribute__((visibility("default")))

namespace mqttspec {

// One value: null, boolean, integer, real, or text (timestamps as ISO 8601 UTC text, json fields
// as their JSON text).
using Value = std::variant<std::monostate, bool, int64_t, double, std::string>;
using Row = std::vector<Value>;

enum class HookType {
  kBeforeHandle,  // every request, once its model is resolved, before the operation's hooks
  kBeforeConnect,
  kAfterConnect,
  kBeforeDisconnect,
  kAfterDisconnect,
  kBeforeRead,
  kAfterRead,
  kBeforeCreate,
  kAfterCreate,
  kBeforeUpdate,
  kAfterUpdate,
  kBeforeDelete,
  kAfterDelete,
  kBeforeSubscribe,
  kAfterSubscribe,
  kBeforeUnsubscribe,
  kAfterUnsubscribe,
};
inline constexpr int kHookTypeCount = 17;

// The connected client, shared by all its requests. `metadata` is for hooks: a connect hook may
// store claims there ("user_id", "tenant_id", "roles") for later hooks to read.
struct ClientInfo {
  std::string id;
  std::string username;
  std::string password;  // only during connect hooks; empty afterwards
  std::map<std::string, std::string> metadata;
};

// A field of a model, as hooks see it.
struct FieldInfo {
  std::string name;
  std::string type;  // integer | real | text | boolean | timestamp | json
  bool nullable = true;
  bool primary = false;
  bool unique = false;
};

struct ModelInfo {
  std::string schema;
  std::string entity;
  std::string primary_key;
  std::vector<FieldInfo> fields;
  // What clients may do with the model, through every front and for subscriptions:
  //   "read_write" (the default) · "read_only" (read, meta, subscribe) · "none" (nothing: the
  //   model is for the host and plugins, e.g. an audit trail that clients must not read or forge).
  // Anything else is refused as forbidden. PluginHost::Insert writes whatever the setting.
  std::string client_access = "read_write";
};

// What a hook returns. kStop ends the pipeline (the hooks after it do not run):
//   Before hooks, BeforeHandle   the operation does not happen: nothing is read or written, the
//                                client gets the Abort code and message (default forbidden,
//                                "refused by a hook").
//   BeforeConnect                the CONNECT is refused.
//   After hooks of a read        the client gets the error instead of the rows.
//   After hooks of a write       the write has been committed and cannot be undone: the client
//                                gets hook_error with the hook's message, "(the <operation> was
//                                committed)", and "committed": true — never a plain forbidden.
//   other connect hooks          logged.
// A hook that throws is the same as kStop with hook_error (its message is logged, not sent).
enum class HookResult { kContinue, kStop };

// Everything a hook sees of one event. Which parts are present depends on the hook type:
//   data      Before/After Create and Update: the fields the operation sets (one record at a
//             time for a batch create)
//   filters   Before Read, Update, Delete, Subscribe: AddFilter narrows what the operation may
//             see or touch (reads, by-key reads, updates, deletes and notifications alike)
//   result    After hooks: the rows the client will get (After Read: the rows read; After
//             Create/Update/Delete: the row written); a hook may change or remove them
class HookContext {
 public:
  virtual ~HookContext() = default;

  virtual HookType type() const = 0;
  virtual ClientInfo& client() = 0;
  virtual std::string_view operation() const = 0;  // "read", "create", …; "" for connect hooks
  virtual const ModelInfo* model() const = 0;      // null for connect/disconnect/unsubscribe
  virtual std::string_view schema() const = 0;
  virtual std::string_view entity() const = 0;
  virtual const Value* record_id() const = 0;  // the single-record target, if any

  // The fields set by a create or update (Before hooks may change them).
  virtual std::optional<Value> GetField(std::string_view name) const = 0;
  virtual bool HasField(std::string_view name) const = 0;
  // Sets a field, coerced to its type. False (and an error for the client) when the model has no
  // such field or the value does not fit.
  virtual bool SetField(std::string_view name, const Value& value) = 0;
  virtual void RemoveField(std::string_view name) = 0;

  // Adds `column <op> value` (AND) to the operation's filters. op: eq neq gt gte lt lte like
  // ilike in not_in between is_null is_not_null contains starts_with (in/not_in/between take a
  // vector of values). False (and an error for the client) on an unknown column or a bad value.
  virtual bool AddFilter(std::string_view column, std::string_view op,
                         const std::vector<Value>& values) = 0;

  // After hooks: the result rows (each row holds `result_columns()`, in that order). A hook may
  // change them or remove them; removing the row of a committed write hides it from the answer
  // ("data": null), the write stands.
  virtual std::vector<Row>* result() = 0;
  virtual std::vector<std::string> result_columns() const = 0;

  // Sets what the client is told when this hook stops the operation — `code` (a protocol error
  // code, default "forbidden") with `message` — and returns HookResult::kStop, for
  // `return ctx.Abort("…");`.
  [[nodiscard]] virtual HookResult Abort(std::string message, std::string code = "forbidden") = 0;
};

using HookFn = std::function<HookResult(HookContext&)>;

struct HookOptions {
  int priority = 0;    // lower runs first; equal priorities run in registration order
  std::string entity;  // "schema.entity" (or "entity" for public): only for that model; "" = all
};

// What mqttspec offers a plugin during init (and after: the host outlives the plugin).
class PluginHost {
 public:
  virtual ~PluginHost() = default;
  virtual void RegisterHook(HookType type, HookFn fn, HookOptions options = {}) = 0;
  // Registers a model as if it were in the configuration (created in the database when
  // database.migrate is on). `fields` as in the configuration; false with `error` set when it is
  // invalid or exists already.
  virtual bool RegisterModel(const ModelInfo& model, std::string* error) = 0;
  // Inserts one row into a registered model, with the same checks as a client's create (fields
  // resolved in the registry, values coerced and bound). False with `error` set on failure.
  virtual bool Insert(std::string_view schema, std::string_view entity,
                      const std::vector<std::pair<std::string, Value>>& fields,
                      std::string* error) = 0;
  virtual void Log(std::string_view level, std::string_view message) = 0;  // info, warn, error
};

using PluginOptions = std::map<std::string, std::string>;

}  // namespace mqttspec

// The two functions every plugin defines (with MQTTSPEC_PLUGIN_EXPORT).
extern "C" {
typedef int (*mqttspec_plugin_abi_version_fn)();
typedef bool (*mqttspec_plugin_init_fn)(mqttspec::PluginHost& host,
                                        const mqttspec::PluginOptions& options);
}
