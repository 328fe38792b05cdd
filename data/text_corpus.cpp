// normlab data: character-level text corpus (see text_corpus.hpp).
#include "data/text_corpus.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "data/gzip_file.hpp"

namespace nl::data {

std::vector<char32_t> decode_utf8(const std::string& text, const std::string& name) {
  std::vector<char32_t> out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t line = 1;
  auto fail = [&](size_t at, const char* why) {
    char hex[8];
    std::snprintf(hex, sizeof(hex), "0x%02X", s[at]);
    throw Error("'" + name + "': invalid UTF-8 at byte " + std::to_string(at) + " (line " + std::to_string(line) +
                "): " + why + " (byte " + hex + "); save the file as UTF-8");
  };
  for (size_t i = 0; i < n;) {
    unsigned char b = s[i];
    if (b < 0x80) {  // ASCII: the common case
      if (b == '\n') ++line;
      out.push_back(b);
      ++i;
      continue;
    }
    // Lead byte: 110xxxxx = 2 bytes, 1110xxxx = 3, 11110xxx = 4.
    int len = 1;
    char32_t cp = 0;
    if ((b & 0xE0) == 0xC0) { len = 2; cp = b & 0x1F; }
    else if ((b & 0xF0) == 0xE0) { len = 3; cp = b & 0x0F; }
    else if ((b & 0xF8) == 0xF0) { len = 4; cp = b & 0x07; }
    else fail(i, (b & 0xC0) == 0x80 ? "continuation byte without a lead byte" : "byte that never occurs in UTF-8");
    if (i + len > n) fail(i, "multi-byte sequence cut off by the end of the file");
    for (int k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) fail(i + k, "expected a continuation byte 10xxxxxx");
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    static const char32_t kMinForLen[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLen[len]) fail(i, "overlong encoding");
    if (cp >= 0xD800 && cp <= 0xDFFF) fail(i, "encoded UTF-16 surrogate");
    if (cp > 0x10FFFF) fail(i, "code point above U+10FFFF");
    out.push_back(cp);
    i += len;
  }
  return out;
}

std::string encode_utf8(const std::vector<char32_t>& code_points) {
  std::string out;
  out.reserve(code_points.size());
  for (char32_t c : code_points) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xE0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

Vocabulary::Vocabulary(std::vector<char32_t> sorted_unique_chars) : chars_(std::move(sorted_unique_chars)) {
  std::fill(std::begin(ascii_), std::end(ascii_), -1);
  for (size_t k = 0; k < chars_.size(); ++k) {
    NL_CHECK(k == 0 || chars_[k - 1] < chars_[k], "Vocabulary: characters must be sorted and unique");
    if (chars_[k] < 128) ascii_[chars_[k]] = static_cast<int32_t>(k);
    else others_[chars_[k]] = static_cast<int32_t>(k);
  }
}

Vocabulary Vocabulary::from_text(const std::vector<char32_t>& chars) {
  std::vector<char32_t> unique(chars);
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  return Vocabulary(std::move(unique));
}

int32_t Vocabulary::id_of(char32_t c) const {
  if (c < 128) return ascii_[c];
  auto it = others_.find(c);
  return it == others_.end() ? -1 : it->second;
}

std::vector<int32_t> Vocabulary::encode(const std::string& text) const {
  std::vector<char32_t> chars = decode_utf8(text, "text to encode");
  std::vector<int32_t> ids(chars.size());
  for (size_t i = 0; i < chars.size(); ++i) {
    ids[i] = id_of(chars[i]);
    NL_CHECK(ids[i] >= 0, "Vocabulary::encode: character U+", static_cast<int64_t>(chars[i]), " ('",
             encode_utf8({chars[i]}), "') at position ", i, " is not in the ", size(), "-character vocabulary");
  }
  return ids;
}

std::string Vocabulary::decode(const std::vector<int32_t>& ids) const {
  std::vector<char32_t> chars(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    NL_CHECK(ids[i] >= 0 && ids[i] < size(), "Vocabulary::decode: id ", ids[i], " at position ", i,
             " is outside 0..", size() - 1);
    chars[i] = chars_[ids[i]];
  }
  return encode_utf8(chars);
}

TextCorpus TextCorpus::from_string(const std::string& text, const std::string& name, double val_fraction) {
  NL_CHECK(!text.empty(), "'", name, "': the text corpus is empty");
  NL_CHECK(val_fraction >= 0.0 && val_fraction < 1.0, "TextCorpus '", name,
           "': val_fraction must be in [0, 1), got ", val_fraction);
  std::vector<char32_t> chars = decode_utf8(text, name);
  TextCorpus corpus;
  corpus.name_ = name;
  corpus.vocab_ = Vocabulary::from_text(chars);
  const int64_t n = static_cast<int64_t>(chars.size());
  const int64_t n_val = static_cast<int64_t>(std::floor(val_fraction * static_cast<double>(n)));
  std::vector<int32_t> ids(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = corpus.vocab_.id_of(chars[i]);
  corpus.val_.assign(ids.begin() + (n - n_val), ids.end());
  ids.resize(n - n_val);
  corpus.train_ = std::move(ids);
  return corpus;
}

TextCorpus TextCorpus::from_file(const std::string& path, double val_fraction) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  return from_string(std::string(bytes.begin(), bytes.end()), path, val_fraction);
}

TextBatch TextCorpus::sample_batch(Split split, int64_t batch, int64_t seq_len, Generator& gen) const {
  const std::vector<int32_t>& data = ids(split);
  const char* which = split == Split::Train ? "training" : "validation";
  NL_CHECK(batch > 0 && seq_len > 0, "TextCorpus::sample_batch: batch and seq_len must be positive, got ", batch,
           " and ", seq_len);
  const int64_t n = static_cast<int64_t>(data.size());
  NL_CHECK(n >= seq_len + 1, "'", name_, "': the ", which, " split has ", n,
           " characters, too few for windows of seq_len + 1 = ", seq_len + 1);
  TextBatch out;
  out.batch = batch;
  out.seq_len = seq_len;
  out.inputs.resize(batch * seq_len);
  out.targets.resize(batch * seq_len);
  // Start positions 0 .. n - seq_len - 1, so that the last target ids[start + seq_len] exists.
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t start = static_cast<int64_t>(gen.below(static_cast<uint64_t>(n - seq_len)));
    std::copy_n(data.begin() + start, seq_len, out.inputs.begin() + b * seq_len);
    std::copy_n(data.begin() + start + 1, seq_len, out.targets.begin() + b * seq_len);
  }
  return out;
}

}  // namespace nl::data
