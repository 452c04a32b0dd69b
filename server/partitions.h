#pragma once
// Partitions: which clients' requests this instance answers under static partitioning
// (broker.partition: {index, count}). A client's partition is PartitionOf(client id, count); the
// instance holds its own index and any it adopted from a dead instance (server/cluster.h). With
// count 1 (the default) it holds every client.
// Thread-safety: any thread (one atomic bit set).

#include <atomic>
#include <cstdint>
#include <string_view>

#include "server/topics.h"

namespace mqttspec::server {

class Partitions {
 public:
  Partitions(int index, int count)
      : count_(count), held_(count > 1 ? uint64_t{1} << index : ~uint64_t{0}) {}

  bool Holds(std::string_view client_id) const {
    return count_ <= 1 ||
           ((held_.load(std::memory_order_relaxed) >> PartitionOf(client_id, count_)) & 1);
  }
  void Add(uint64_t indexes) { held_.fetch_or(indexes); }
  void Remove(uint64_t indexes) { held_.fetch_and(~indexes); }
  uint64_t held() const { return held_.load(); }
  int count() const { return count_; }

 private:
  const int count_;
  std::atomic<uint64_t> held_;
};

}  // namespace mqttspec::server
