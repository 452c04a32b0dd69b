#include "server/log_follower.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "adapters/change_log.h"

namespace mqttspec::server {

using adapters::Change;

LogFollower::LogFollower(adapters::Database& db, const registry::ModelRegistry& models,
                         ChangeFeed& feed)
    : db_(db), models_(models), feed_(feed), signal_(db.ListenForChanges()) {
  thread_ = std::thread([this] { Run(); });
}

LogFollower::~LogFollower() {
  stopping_.store(true);
  if (signal_) signal_->Wake();
  thread_.join();
}

void LogFollower::OnCommitted(std::vector<Change>) {
  if (signal_) signal_->Wake();
}

void LogFollower::Run() {
  bool warned = false;
  while (!stopping_.load()) {
    const int read = ReadPage();
    if (read < 0 && !warned) spdlog::warn("following the change log: it cannot be read; retrying");
    warned = read < 0;
    if (read == static_cast<int>(kPage)) continue;  // more to read
    if (signal_) {
      signal_->Wait(kPollMs);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
    }
  }
}

int LogFollower::ReadPage() {
  const int64_t from = position_.load();
  auto page = db_.ReadChanges(from < 0 ? INT64_MAX : from, from < 0 ? 0 : kPage);
  if (!page.ok()) return -1;
  const adapters::ChangePage& p = page.value();
  if (from < 0) {  // the first read: from the newest on
    position_.store(p.newest);
    spdlog::info("following the change log from change_seq {}", p.newest);
    return 0;
  }
  if (!p.changes.empty() && p.changes.front().change_seq != from + 1) {
    feed_.EndAll(
        from,
        MakeError(
            ErrorCode::kResyncRequired,
            fmt::format("this instance fell behind the change log: changes {} to {} were trimmed "
                        "before it could notify them",
                        from + 1, p.changes.front().change_seq - 1)));
  }
  std::vector<Change> changes;
  changes.reserve(p.changes.size());
  for (const adapters::LoggedChange& c : p.changes) {
    registry::ModelPtr model = models_.Find(c.schema, c.entity);
    if (!model) continue;  // not served here
    Change change;
    change.kind = c.kind;
    change.model = model.get();
    change.change_seq = c.change_seq;
    auto row = adapters::DecodeRow(*model, c.data);
    Result<Row> before = Row{};
    if (c.kind == Change::Kind::kUpdate && !c.old_data.empty())
      before = adapters::DecodeRow(*model, c.old_data);
    if (!row.ok() || !before.ok()) {
      spdlog::error("change {} of {}: {}; not notified", c.change_seq, model->qualified_name(),
                    (row.ok() ? before : row).error().message);
      continue;
    }
    if (c.kind == Change::Kind::kDelete) {
      change.before = std::move(row).value();
    } else {
      change.after = std::move(row).value();
      change.before = std::move(before).value();
    }
    changes.push_back(std::move(change));
  }
  if (!changes.empty()) feed_.OnCommitted(std::move(changes));
  if (!p.changes.empty()) position_.store(p.changes.back().change_seq);
  return static_cast<int>(p.changes.size());
}

}  // namespace mqttspec::server
