// normlab data: a character-level text corpus for language modelling (e.g. tiny Shakespeare).
//
// Format: a UTF-8 text file (ASCII is a subset). The unit of modelling is the Unicode code
// point, so "é" is one token, not two bytes. The vocabulary is built from the data itself:
// the sorted set of distinct code points, id k = the k-th smallest. For tiny Shakespeare
// that is 65 characters, '\n' = 0, ' ' = 1, ...
//
// Training batches are random windows: B start positions drawn from a Generator, inputs
// x[b, t] = ids[start_b + t] and targets y[b, t] = ids[start_b + t + 1] (the next character)
// for t < T. Validation uses the last `val_fraction` of the text (a contiguous tail, so no
// window straddles both splits and leaks training text into validation).
#pragma once

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/random.hpp"

namespace nl::data {

// Decode UTF-8 into code points. Throws nl::Error naming `name` and the byte offset on
// invalid UTF-8 (stray continuation bytes, truncated sequences, overlong forms, surrogates,
// values above U+10FFFF).
std::vector<char32_t> decode_utf8(const std::string& text, const std::string& name);
std::string encode_utf8(const std::vector<char32_t>& code_points);

class Vocabulary {
 public:
  Vocabulary() { std::fill(std::begin(ascii_), std::end(ascii_), -1); }  // empty
  explicit Vocabulary(std::vector<char32_t> sorted_unique_chars);
  static Vocabulary from_text(const std::vector<char32_t>& chars);  // sorted unique

  int32_t size() const { return static_cast<int32_t>(chars_.size()); }
  char32_t char_of(int32_t id) const { return chars_.at(id); }
  int32_t id_of(char32_t c) const;  // -1 if not in the vocabulary
  const std::vector<char32_t>& chars() const { return chars_; }

  std::vector<int32_t> encode(const std::string& text) const;  // throws on unknown chars
  std::string decode(const std::vector<int32_t>& ids) const;    // throws on out-of-range ids

 private:
  std::vector<char32_t> chars_;
  int32_t ascii_[128];                             // fast path for ASCII
  std::unordered_map<char32_t, int32_t> others_;   // everything else
};

// B x T windows, row-major: inputs[b * seq_len + t], targets likewise (next character).
struct TextBatch {
  int64_t batch = 0, seq_len = 0;
  std::vector<int32_t> inputs, targets;
};

class TextCorpus {
 public:
  // Reads `path` (plain or .gz). Throws on a missing/empty file or invalid UTF-8.
  static TextCorpus from_file(const std::string& path, double val_fraction = 0.1);
  static TextCorpus from_string(const std::string& text, const std::string& name, double val_fraction = 0.1);

  const std::string& name() const { return name_; }
  const Vocabulary& vocab() const { return vocab_; }
  int32_t vocab_size() const { return vocab_.size(); }
  const std::vector<int32_t>& train_ids() const { return train_; }
  const std::vector<int32_t>& val_ids() const { return val_; }
  int64_t num_chars() const { return static_cast<int64_t>(train_.size() + val_.size()); }

  enum class Split { Train, Val };
  const std::vector<int32_t>& ids(Split s) const { return s == Split::Train ? train_ : val_; }
  // B random windows of T+1 consecutive ids; throws if the split is shorter than T+1.
  TextBatch sample_batch(Split split, int64_t batch, int64_t seq_len, Generator& gen) const;

  std::vector<int32_t> encode(const std::string& text) const { return vocab_.encode(text); }
  std::string decode(const std::vector<int32_t>& ids) const { return vocab_.decode(ids); }

 private:
  std::string name_;
  Vocabulary vocab_;
  std::vector<int32_t> train_, val_;
};

}  // namespace nl::data
