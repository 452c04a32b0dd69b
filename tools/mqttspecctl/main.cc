// mqttspecctl: the command-line client of mqttspecd's gRPC front (admin.listen) — the Admin
// service (status, clients, kick, subs, unsub, models, model, hooks, metrics, watch) and the
// data API (read, create, update, delete).
//
//   mqttspecctl [--addr HOST:PORT] [--token T] [--json] [--timeout S]
//               [--tls] [--ca-file F] [--cert-file F --key-file F] [--server-name N] COMMAND …
//
// Tables for people by default, --json for scripts (one JSON object a line). --addr and --token
// default to $MQTTSPECCTL_ADDR / $MQTTSPECCTL_TOKEN (else 127.0.0.1:50051, no token), the TLS
// options to $MQTTSPECCTL_TLS, _CA_FILE, _CERT_FILE, _KEY_FILE, _SERVER_NAME (else plaintext).
// Exit codes: 0 success, 1 an error answer (`error: <code>: <message>` on stderr), 2 a usage
// error, 3 mqttspecd unreachable.

#include <CLI/CLI.hpp>
#include <vector>

#include "tools/mqttspecctl/commands.h"
#include "tools/mqttspecctl/interrupts.h"
#include "tools/mqttspecctl/session.h"

using namespace mqttspec::ctl;

int main(int argc, char** argv) {
  CLI::App app{"mqttspecctl: inspect and operate mqttspecd through its gRPC front (admin.listen)",
               "mqttspecctl"};
  app.set_version_flag("--version", MQTTSPEC_VERSION);
  app.fallthrough();  // global options may also follow the command
  app.require_subcommand(1);

  GlobalOptions global;
  app.add_option("--addr", global.addr, "HOST:PORT of mqttspecd's admin.listen")
      ->envname("MQTTSPECCTL_ADDR")
      ->capture_default_str();
  app.add_option("--token", global.token, "admin.token, sent as authorization: Bearer <token>")
      ->envname("MQTTSPECCTL_TOKEN");
  app.add_flag("--json", global.json, "print JSON (one object a line) instead of tables");
  app.add_option("--timeout", global.timeout_s, "seconds to wait for an answer (not for watch)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  // TLS, for a daemon with admin.tls (any of the files turns it on).
  app.add_flag("--tls", global.tls, "connect with TLS (the system's CA roots unless --ca-file)")
      ->envname("MQTTSPECCTL_TLS");
  app.add_option("--ca-file", global.ca_file, "PEM: the CA of the daemon's certificate")
      ->envname("MQTTSPECCTL_CA_FILE");
  app.add_option("--cert-file", global.cert_file,
                 "PEM: this client's certificate (admin.tls with ca_file)")
      ->envname("MQTTSPECCTL_CERT_FILE");
  app.add_option("--key-file", global.key_file, "PEM: the key of --cert-file")
      ->envname("MQTTSPECCTL_KEY_FILE");
  app.add_option("--server-name", global.server_name,
                 "the name the daemon's certificate must carry (default: the host of --addr)")
      ->envname("MQTTSPECCTL_SERVER_NAME");

  std::vector<Command> commands;
  AddAdminCommands(app, commands);
  AddDataCommands(app, commands);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    std::vector<std::string> rest = app.remaining();
    if (app.get_subcommands().empty() &&
        !rest.empty()) {  // clearer than "a subcommand is required"
      return UsageError("unknown command '" + rest.front() + "' (see --help)");
    }
    return UsageError(std::string(e.what()) + " (see --help)");
  }

  InstallInterrupts();  // before gRPC starts its threads
  auto channel = OpenChannel(global);
  if (!channel.ok()) return UsageError(channel.error().message);
  Session session(global, std::move(channel).value());
  for (const Command& command : commands) {
    if (command.app->parsed()) return command.run(session);
  }
  return UsageError("no command given (see --help)");
}
