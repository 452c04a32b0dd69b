// The data commands of mqttspecctl (Query service): read, create, update, delete. Each builds
// one Request — arguments are checked before anything is sent — and Send prints the Response.

#include <fmt/core.h>

#include <memory>

#include "tools/mqttspecctl/commands.h"
#include "tools/mqttspecctl/output.h"
#include "tools/mqttspecctl/query_args.h"

namespace mqttspec::ctl {

namespace {

using QueryStub = query_api::Query::Stub;
using QueryMethod = grpc::Status (QueryStub::*)(grpc::ClientContext*, const query_api::Request&,
                                                query_api::Response*);

struct DataArgs {
  std::string schema;  // "" = the service's default
  std::string entity;
  std::string id;
  std::string json;  // create/update: the data
  ReadArgs read;
};

query_api::Request NewRequest(const DataArgs& args) {
  query_api::Request request;
  request.set_schema(args.schema);
  request.set_entity(args.entity);
  request.set_record_id(args.id);
  return request;
}

// The model's field names in model order (from Meta), so tables show columns as the model
// lists them; empty if Meta fails (the fields are then sorted by name).
std::vector<std::string> ModelFieldOrder(Session& s, const query_api::Request& request) {
  query_api::Request meta_request;
  meta_request.set_schema(request.schema());
  meta_request.set_entity(request.entity());
  query_api::Response meta;
  if (!s.Invoke(&QueryStub::Meta, meta_request, &meta).status.ok()) return {};
  std::vector<std::string> names;
  const auto& fields = meta.data().struct_value().fields();
  auto columns = fields.find("columns");
  if (columns == fields.end()) return names;
  for (const auto& column : columns->second.list_value().values()) {
    auto name = column.struct_value().fields().find("name");
    if (name != column.struct_value().fields().end()) {
      names.push_back(name->second.string_value());
    }
  }
  return names;
}

// A list answer's "<count> of <total> rows" on stderr (the rows alone go to stdout).
void PrintListSummary(const google::protobuf::Struct& metadata) {
  const auto& fields = metadata.fields();
  auto count = fields.find("count");
  auto total = fields.find("total");
  if (count == fields.end() || total == fields.end()) return;
  fmt::print(stderr, "{} of {} rows\n", Cell(count->second), Cell(total->second));
}

// Sends the request; prints the Response as JSON ({"data", "metadata"}: an absent metadata as
// {}, so scripts always find both keys), or its data for people.
int Send(Session& s, QueryMethod method, const query_api::Request& request) {
  query_api::Response response;
  if (int rc = s.Call(method, request, &response)) return rc;
  if (s.json()) {
    response.mutable_metadata();
    return PrintJson(response) ? kExitOk : kExitError;
  }
  PrintData(response.data(), ModelFieldOrder(s, request));
  PrintListSummary(response.metadata());
  return kExitOk;
}

int Read(Session& s, const DataArgs& args) {
  query_api::Request request = NewRequest(args);
  std::string error;
  if (!BuildReadOptions(args.read, request.mutable_options(), &error)) return UsageError(error);
  return Send(s, &QueryStub::Read, request);
}

// Create and update: the JSON argument is the request's data.
int Write(Session& s, QueryMethod method, const DataArgs& args) {
  query_api::Request request = NewRequest(args);
  std::string error;
  if (!ParseJsonArgument(args.json, request.mutable_data(), &error)) return UsageError(error);
  return Send(s, method, request);
}

int Delete(Session& s, const DataArgs& args) {
  return Send(s, &QueryStub::Delete, NewRequest(args));
}

// A data subcommand with --schema, ENTITY and, when id is kOptional/kRequired, ID.
enum class IdArg { kNone, kOptional, kRequired };
CLI::App* AddDataCommand(CLI::App& app, const char* name, const char* description, DataArgs& args,
                         IdArg id) {
  auto* command = app.add_subcommand(name, description);
  command->add_option("--schema", args.schema, "the model's schema (default: the service's)");
  command->add_option("ENTITY", args.entity, "the model's name")->required();
  if (id != IdArg::kNone) {
    auto* option = command->add_option("ID", args.id, "the record's primary key");
    if (id == IdArg::kRequired) option->required();
  }
  return command;
}

}  // namespace

void AddDataCommands(CLI::App& app, std::vector<Command>& commands) {
  auto read_args = std::make_shared<DataArgs>();
  auto* read =
      AddDataCommand(app, "read", "one record by ID, or a list", *read_args, IdArg::kOptional);
  read->add_option("--filter", read_args->read.filters,
                   "column:operator:value (repeatable; in/not_in/between: a,b,…)")
      ->allow_extra_args(false);
  read->add_option("--sort", read_args->read.sorts, "column[:desc] (repeatable)")
      ->allow_extra_args(false);
  read->add_option("--limit", read_args->read.limit, "at most N rows")
      ->check(CLI::NonNegativeNumber);
  read->add_option("--offset", read_args->read.offset, "skip N rows")
      ->check(CLI::NonNegativeNumber);
  commands.push_back({read, [read_args](Session& s) { return Read(s, *read_args); }});

  auto create_args = std::make_shared<DataArgs>();
  auto* create = AddDataCommand(app, "create", "create a record (or an array of records)",
                                *create_args, IdArg::kNone);
  create->add_option("JSON", create_args->json, "the record as JSON")->required();
  commands.push_back(
      {create, [create_args](Session& s) { return Write(s, &QueryStub::Create, *create_args); }});

  auto update_args = std::make_shared<DataArgs>();
  auto* update =
      AddDataCommand(app, "update", "change fields of a record", *update_args, IdArg::kRequired);
  update->add_option("JSON", update_args->json, "the fields to change as JSON")->required();
  commands.push_back(
      {update, [update_args](Session& s) { return Write(s, &QueryStub::Update, *update_args); }});

  auto delete_args = std::make_shared<DataArgs>();
  auto* del = AddDataCommand(app, "delete", "delete a record", *delete_args, IdArg::kRequired);
  commands.push_back({del, [delete_args](Session& s) { return Delete(s, *delete_args); }});
}

}  // namespace mqttspec::ctl
