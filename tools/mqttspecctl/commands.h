#pragma once
// mqttspecctl's subcommands: each is registered with the CLI11 subcommand that selects it (and
// binds its arguments) and what it runs once the command line has been parsed.

#include <CLI/CLI.hpp>
#include <functional>
#include <vector>

#include "tools/mqttspecctl/session.h"

namespace mqttspec::ctl {

struct Command {
  CLI::App* app;                     // owned by the parent CLI::App
  std::function<int(Session&)> run;  // returns the exit code
};

// status, clients, kick, subs, unsub, models, model, hooks, metrics, watch (Admin service).
void AddAdminCommands(CLI::App& app, std::vector<Command>& commands);

// read, create, update, delete (Query service).
void AddDataCommands(CLI::App& app, std::vector<Command>& commands);

}  // namespace mqttspec::ctl
