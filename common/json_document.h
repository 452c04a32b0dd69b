#pragma once
// LocalDocument: a rapidjson::Document for a short-lived parse — a request, a json cell being
// rendered or compared — whose first kInline bytes are inside the object (on the stack, as a
// local) and which grows in kChunk pieces beyond them.
//
// Why: a default rapidjson::Document takes a 64 KiB chunk from malloc for its first value, and
// gives it back when it goes. For glibc that is a large request each time, which first merges
// every fast-bin chunk of the thread's arena (malloc_consolidate) — once per request on the write
// path, where the profile of a create showed malloc at ~7 % of the broker's CPU
// (bench/RESULTS.md §"Writes, 2026-12-05 (2)").
// Thread-safety: as a rapidjson::Document — one thread at a time. Neither copied nor moved (the
// document points into the object).

#include <rapidjson/document.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "common/json_text.h"

namespace mqttspec {

class LocalDocument {
 public:
  static constexpr size_t kInline = 2048;  // a typical request's DOM fits
  static constexpr size_t kChunk = 8192;   // then malloc'd in these

  LocalDocument() : pool_(buffer_, sizeof buffer_, kChunk), doc_(&pool_) {}
  explicit LocalDocument(rapidjson::Type type)
      : pool_(buffer_, sizeof buffer_, kChunk), doc_(type, &pool_) {}
  LocalDocument(const LocalDocument&) = delete;
  LocalDocument& operator=(const LocalDocument&) = delete;

  rapidjson::Document& operator*() { return doc_; }
  rapidjson::Document* operator->() { return &doc_; }
  rapidjson::Document* get() { return &doc_; }

 private:
  alignas(std::max_align_t) char buffer_[kInline];
  rapidjson::MemoryPoolAllocator<> pool_;
  rapidjson::Document doc_;  // after pool_: destroyed before it
};

// Parses stored or client JSON text at full precision with its numbers read exactly
// (ExactNumbers, json_text.h). False: not JSON (doc holds the parse error).
inline bool ParseExactJson(std::string_view text, rapidjson::Document& doc) {
  std::string patched;
  const std::string_view exact = ExactNumbers(text, &patched);
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(exact.data(), exact.size());
  return !doc.HasParseError();
}

}  // namespace mqttspec
