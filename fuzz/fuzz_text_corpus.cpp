// normlab fuzz: the character-level text corpus (data/text_corpus.hpp): UTF-8 decoding,
// the vocabulary and the train/val split. Byte 0 of the input sets val_fraction (byte/256)
// and the window length; the rest is the text. Properties checked on success:
//   - encode_utf8(decode_utf8(text)) == text (a valid UTF-8 string has one encoding);
//   - the vocabulary is sorted and unique, and id_of/char_of are inverse;
//   - vocab.decode(vocab.encode(text)) == text, and train ++ val == encode(text);
//   - sample_batch succeeds exactly when the split holds seq_len + 1 ids, and every window is
//     a slice of the split with targets shifted by one.
// On invalid UTF-8 or an empty text the nl::Error must name the corpus.
#include <algorithm>
#include <cstring>

#include "data/text_corpus.hpp"
#include "fuzz/fuzz_util.hpp"

using nl::data::TextCorpus;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const double val_fraction = data[0] / 256.0;
  const int64_t seq_len = 1 + data[0] % 8;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string name = "fuzz-corpus.txt";

  std::vector<char32_t> cps;
  try {
    cps = nl::data::decode_utf8(text, name);
  } catch (const nl::Error& e) {
    FUZZ_REQUIRE(std::strstr(e.what(), name.c_str()) != nullptr);
    return 0;
  }
  FUZZ_REQUIRE(nl::data::encode_utf8(cps) == text);
  for (char32_t c : cps) FUZZ_REQUIRE(c <= 0x10FFFF && !(c >= 0xD800 && c <= 0xDFFF));

  nl::data::Vocabulary vocab = nl::data::Vocabulary::from_text(cps);
  for (int32_t k = 0; k < vocab.size(); ++k) {
    FUZZ_REQUIRE(k == 0 || vocab.char_of(k - 1) < vocab.char_of(k));
    FUZZ_REQUIRE(vocab.id_of(vocab.char_of(k)) == k);
  }
  std::vector<int32_t> ids = vocab.encode(text);
  FUZZ_REQUIRE(ids.size() == cps.size());
  FUZZ_REQUIRE(vocab.decode(ids) == text);

  try {
    TextCorpus corpus = TextCorpus::from_string(text, name, val_fraction);
    FUZZ_REQUIRE(!text.empty());
    FUZZ_REQUIRE(corpus.num_chars() == static_cast<int64_t>(cps.size()));
    std::vector<int32_t> all = corpus.train_ids();
    all.insert(all.end(), corpus.val_ids().begin(), corpus.val_ids().end());
    FUZZ_REQUIRE(all == ids);
    for (TextCorpus::Split split : {TextCorpus::Split::Train, TextCorpus::Split::Val}) {
      const std::vector<int32_t>& s = corpus.ids(split);
      nl::Generator gen(size);
      const bool fits = static_cast<int64_t>(s.size()) >= seq_len + 1;
      try {
        nl::data::TextBatch b = corpus.sample_batch(split, 3, seq_len, gen);
        FUZZ_REQUIRE(fits);
        FUZZ_REQUIRE(b.inputs.size() == static_cast<size_t>(3 * seq_len) && b.targets.size() == b.inputs.size());
        for (int64_t r = 0; r < 3; ++r) {
          const int32_t* x = b.inputs.data() + r * seq_len;
          const int32_t* y = b.targets.data() + r * seq_len;
          FUZZ_REQUIRE(std::search(s.begin(), s.end(), x, x + seq_len) != s.end());
          FUZZ_REQUIRE(std::equal(x + 1, x + seq_len, y));
        }
      } catch (const nl::Error& e) {
        FUZZ_REQUIRE(!fits);
      }
    }
  } catch (const nl::Error& e) {
    FUZZ_REQUIRE(text.empty() && std::strstr(e.what(), name.c_str()) != nullptr);
  }
  return 0;
}
