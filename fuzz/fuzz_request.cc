// fuzz_request: arbitrary bytes as a request payload → protocol::ParseRequest (envelope, options,
// filters, records) against the fuzz registry (fuzz_common.h). Besides crashes, leaks and
// undefined behaviour it stops on:
//   - a refusal whose answer (protocol::RenderError) is not valid UTF-8 JSON carrying the code and
//     the message, or whose message is empty;
//   - an accepted request that is not self-consistent: the model of an operation that needs one
//     missing or not the registry's, a target, records, columns, sort keys or filters that
//     protocol/ could not have produced (docs/protocol.md §2–§6), an id that RequestIdJson reads
//     differently;
//   - a payload that is one number not read as the nearest double (refused beyond the largest,
//     0 below the smallest).
#include <charconv>
#include <set>

#include "fuzz/fuzz_common.h"
#include "protocol/record.h"
#include "protocol/render.h"
#include "protocol/request.h"

namespace mqttspec::fuzz {
namespace {

using protocol::Operation;
using protocol::Request;

// The request's story for a failure report.
std::string Story(std::string_view payload, const Request& req) {
  std::string out = "payload: " + std::string(payload.substr(0, 2000));
  out += "\noperation: " + std::string(protocol::OperationName(req.op));
  if (req.model) out += "\nmodel: " + Describe(*req.model);
  if (req.key) out += "\nkey: " + Show(*req.key);
  for (const auto& r : req.records) {
    out += "\nrecord:";
    for (const auto& a : r) out += " " + std::to_string(a.field) + "=" + Show(a.value);
  }
  if (req.model && !req.query.filters.empty())
    out += "\nfilters: " + ShowFilters(*req.model, req.query.filters);
  return out;
}

void CheckRecord(const registry::Model& m, const adapters::Record& r, bool partial,
                 const std::string& story) {
  std::set<int> seen;
  for (const adapters::Assignment& a : r) {
    FUZZ_CHECK(a.field >= 0 && static_cast<size_t>(a.field) < m.fields().size(), story);
    const registry::Field& f = m.field(static_cast<size_t>(a.field));
    FUZZ_CHECK(HasFieldForm(f, a.value), "field " + f.name + ": " + Show(a.value) + "\n" + story);
    FUZZ_CHECK(seen.insert(a.field).second, "field " + f.name + " assigned twice\n" + story);
    FUZZ_CHECK(!(partial && f.primary), "an update assigns the key\n" + story);
  }
  if (partial) return;
  for (size_t i = 0; i < m.fields().size(); ++i) {  // defaults were applied
    if (m.field(i).default_value)
      FUZZ_CHECK(seen.count(static_cast<int>(i)), "default of " + m.field(i).name + "\n" + story);
  }
}

void CheckQuery(const registry::Model& m, const adapters::ReadQuery& q,
                const protocol::ParseLimits& limits, const std::string& story) {
  FUZZ_CHECK(q.model.get() == &m, story);
  FUZZ_CHECK(!q.columns.empty(), story);
  for (size_t i = 0; i < q.columns.size(); ++i) {
    FUZZ_CHECK(q.columns[i] >= 0 && static_cast<size_t>(q.columns[i]) < m.fields().size(), story);
    FUZZ_CHECK(i == 0 || q.columns[i - 1] < q.columns[i], "columns not in model order\n" + story);
  }
  FUZZ_CHECK(q.limit > 0 && q.limit <= limits.max_rows,
             "limit " + std::to_string(q.limit) + "\n" + story);
  FUZZ_CHECK(q.offset >= 0, story);
  FUZZ_CHECK(q.sort.size() <= 2 * m.fields().size(), story);
  for (const adapters::SortKey& k : q.sort) {
    FUZZ_CHECK(k.field >= 0 && static_cast<size_t>(k.field) < m.fields().size(), story);
    FUZZ_CHECK(m.field(static_cast<size_t>(k.field)).type != registry::FieldType::kJson, story);
  }
  int count = 0;
  const std::string problem = FilterListProblem(m, q.filters, limits, 0, &count);
  FUZZ_CHECK(problem.empty(), problem + "\n" + story);
}

void CheckAccepted(std::string_view payload, const Request& req,
                   const protocol::ParseLimits& limits) {
  const std::string story = Story(payload, req);
  FUZZ_CHECK(protocol::RequestIdJson(payload) == req.id_json, story);
  if (req.op == Operation::kPing || req.op == Operation::kUnsubscribe) return;
  FUZZ_CHECK(req.model != nullptr, "no model for an operation that needs one\n" + story);
  const registry::Model& m = *req.model;
  FUZZ_CHECK(Registry().Find(m.schema(), m.entity()) == req.model, story);
  if (req.key) {
    FUZZ_CHECK(!IsNull(*req.key) && HasFieldForm(m.primary(), *req.key), story);
  }
  switch (req.op) {
    case Operation::kRead:
    case Operation::kSubscribe: CheckQuery(m, req.query, limits, story); break;
    case Operation::kCreate:
      FUZZ_CHECK(!req.records.empty() && req.records.size() <= limits.max_batch, story);
      FUZZ_CHECK(req.batch || req.records.size() == 1, story);
      for (const auto& r : req.records) CheckRecord(m, r, false, story);
      break;
    case Operation::kUpdate:
      FUZZ_CHECK(req.key.has_value(), "update without a target\n" + story);
      FUZZ_CHECK(req.records.size() == 1 && !req.records[0].empty(), story);
      CheckRecord(m, req.records[0], true, story);
      FUZZ_CHECK(req.query.columns.size() == m.fields().size(), story);
      break;
    case Operation::kDelete: FUZZ_CHECK(req.key.has_value(), story); break;
    default: break;
  }
}

// A refusal's answer must be JSON a client can read: valid UTF-8, the code and message as given.
void CheckRefusal(std::string_view payload, const Request& req, const Error& e) {
  const std::string story = "payload: " + std::string(payload.substr(0, 2000)) +
                            "\nerror: " + std::string(ErrorCodeName(e.code)) + ": " + e.message;
  FUZZ_CHECK(!e.message.empty(), story);
  const std::string answer = protocol::RenderError(req.id_json, e);
  rapidjson::Document doc;
  FUZZ_CHECK(ParseJson(answer, doc) && doc.IsObject(), "answer: " + answer + "\n" + story);
  const rapidjson::Value* err = Member(doc, "error");
  const rapidjson::Value* msg = err ? Member(*err, "message") : nullptr;
  FUZZ_CHECK(msg && msg->IsString() &&
                 std::string_view(msg->GetString(), msg->GetStringLength()) == e.message,
             "answer: " + answer + "\n" + story);
  FUZZ_CHECK(protocol::RequestIdJson(payload) == req.id_json, "id " + req.id_json + "\n" + story);
}

// A payload that is one JSON number (RapidJSON 1.1.0 misread some, json_text.h): the server's
// parse must read it as the nearest double (std::from_chars), refuse one beyond the largest
// double, and read one below the smallest as 0.
void CheckNumber(std::string_view payload) {
  const size_t b = payload.find_first_not_of(" \t\n\r");
  if (b == std::string_view::npos) return;
  const std::string_view token = payload.substr(b, payload.find_last_not_of(" \t\n\r") + 1 - b);
  size_t i = token[0] == '-' ? 1 : 0;  // JSON's number grammar, which from_chars is looser than
  auto digits = [&] {
    const size_t from = i;
    while (i < token.size() && token[i] >= '0' && token[i] <= '9') ++i;
    return i - from;
  };
  const size_t int_digits = digits();
  if (int_digits == 0 || (int_digits > 1 && token[i - int_digits] == '0')) return;
  if (i < token.size() && token[i] == '.' && (++i, digits() == 0)) return;
  if (i < token.size() && (token[i] == 'e' || token[i] == 'E')) {
    ++i;
    if (i < token.size() && (token[i] == '+' || token[i] == '-')) ++i;
    if (digits() == 0) return;
  }
  if (i != token.size()) return;
  double want = 0;
  const auto r = std::from_chars(token.data(), token.data() + token.size(), want);
  rapidjson::Document doc;
  const bool parsed = ParseJson(payload, doc);
  const std::string story = "number: " + std::string(token.substr(0, 400));
  if (r.ec == std::errc::result_out_of_range) {
    // Beyond the largest double: refused; below the smallest: 0.
    FUZZ_CHECK(!parsed || (doc.IsNumber() && doc.GetDouble() == 0.0), story);
    return;
  }
  FUZZ_CHECK(r.ec == std::errc() && parsed && doc.IsNumber(), story);
  FUZZ_CHECK(doc.GetDouble() == want, story + "\nread: " + std::to_string(doc.GetDouble()) +
                                          " want " + std::to_string(want));
}

}  // namespace
}  // namespace mqttspec::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mqttspec::fuzz;  // NOLINT: the fuzz helpers
  const std::string_view payload = AsText(data, size);
  mqttspec::protocol::Request req;
  auto st = mqttspec::protocol::ParseRequest(payload, Registry(), Limits(), &req);
  if (st.ok())
    CheckAccepted(payload, req, Limits());
  else
    CheckRefusal(payload, req, st.error());
  CheckNumber(payload);
  return 0;
}
