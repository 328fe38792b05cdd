// normlab fuzz: gzip decoding (data/gzip_file.hpp).
// 1. gunzip() of arbitrary bytes returns data or throws nl::Error naming the source.
// 2. Differential: what zlib's own gzip writer makes of the input, gunzip() must decode back
//    to exactly the input, also as two concatenated members (what `cat a.gz b.gz` gives).
#include <zlib.h>

#include <cstring>

#include "core/tensor.hpp"  // nl::Error
#include "data/gzip_file.hpp"
#include "fuzz/fuzz_util.hpp"

namespace {

std::vector<uint8_t> gzip_compress(const uint8_t* data, size_t size, int level) {
  z_stream zs{};
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
  std::vector<uint8_t> out(deflateBound(&zs, size) + 32);
  zs.next_in = const_cast<Bytef*>(data);
  zs.avail_in = static_cast<uInt>(size);
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string name = "fuzz-input.gz";
  try {
    std::vector<uint8_t> out = nl::data::gunzip(data, size, name);
    (void)out;
  } catch (const nl::Error& e) {
    FUZZ_REQUIRE(std::strstr(e.what(), name.c_str()) != nullptr);
  }

  const int level = size > 0 ? data[0] % 10 : 6;
  std::vector<uint8_t> gz = gzip_compress(data, size, level);
  std::vector<uint8_t> back = nl::data::gunzip(gz.data(), gz.size(), name);  // must not throw
  FUZZ_REQUIRE(back.size() == size && (size == 0 || std::memcmp(back.data(), data, size) == 0));

  std::vector<uint8_t> two = gz;
  two.insert(two.end(), gz.begin(), gz.end());
  back = nl::data::gunzip(two.data(), two.size(), name);
  FUZZ_REQUIRE(back.size() == 2 * size);
  FUZZ_REQUIRE(size == 0 || (std::memcmp(back.data(), data, size) == 0 &&
                             std::memcmp(back.data() + size, data, size) == 0));
  return 0;
}
