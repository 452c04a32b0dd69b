#pragma once
// RecordedKeys: which writes the database may hold a record of (docs/protocol.md §8), so that a
// write the DedupCache does not know is looked up in the database only when it may be a repeat.
// It holds a 64-bit hash of (client id, request id) for every record made by this process and
// every record an earlier run left (Router::LoadRecordedWrites reads them at start), each until
// its record expires. Without it, every write of the first window after a start — and every
// write under a sustained rate above the DedupCache's capacity per window — paid a lookup in the
// requests table (bench/RESULTS.md §Writes: ~17 KiB read and ~40 µs per write on SQLite).
// Only valid where this process is the database's only writer of records (not with
// cluster.enabled: another instance's records are not here).
//
// Hashes are kept in slices of expiry time: the open slice in a hash set, the older ones as
// sorted vectors (8 bytes a record). Bounded by `capacity` hashes: beyond it the oldest slice is
// forgotten, and until that slice's records have expired every question is answered "maybe".
// Thread-safety: all methods from any thread.

#include <cstdint>
#include <deque>
#include <mutex>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace mqttspec::server {

class RecordedKeys {
 public:
  static constexpr size_t kDefaultCapacity = 2'000'000;  // 16 MB of hashes
  // `window_ms`: how long records live, which sizes the slices (at most ~kSlices of them, none
  // shorter than 1 s). MayContain searches each sealed slice: with 64 of them it was ~2 % of the
  // broker's CPU per write under load (bench/RESULTS.md §Writes, 2026-12-05 (3)); 16 keep a
  // record at most window/16 beyond its expiry.
  static constexpr int64_t kSlices = 16;
  explicit RecordedKeys(int64_t window_ms, size_t capacity = kDefaultCapacity);

  static uint64_t Hash(std::string_view client_id, std::string_view request_id);

  // A record of `hash` exists (or may) until `expires_at_ms` (Unix time); `now_ms`: the time
  // now, before which expired slices are dropped (so that they go also while nobody asks).
  void Add(uint64_t hash, int64_t expires_at_ms, int64_t now_ms);
  // Whether the database may hold an unexpired record of `hash` at `now_ms`: a hash that is
  // here, or any hash while something is not known.
  bool MayContain(uint64_t hash, int64_t now_ms);
  // Nothing is known for sure until `until_ms`: MayContain answers true till then (a failed
  // start-up read, forgotten slices).
  void UnknownUntil(int64_t until_ms);

  size_t size();

 private:
  struct Slice {
    int64_t until_ms;  // every hash in it expires by then
    std::vector<uint64_t> sorted;
  };
  void Seal();                  // the open slice becomes the newest sealed one (mu_ held)
  void Expire(int64_t now_ms);  // drops slices whose records all expired (mu_ held)
  void Shrink();                // forgets the oldest slices beyond capacity (mu_ held)

  const int64_t slice_ms_;
  const size_t capacity_;
  std::mutex mu_;             // guards everything below
  std::deque<Slice> sealed_;  // oldest first
  std::unordered_set<uint64_t> open_;
  int64_t open_until_ = INT64_MIN;  // every hash in open_ expires by then
  size_t sealed_size_ = 0;
  int64_t unknown_until_ = 0;
};

}  // namespace mqttspec::server
