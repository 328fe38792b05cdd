// normlab fuzz: the CIFAR-10 binary batch reader (data/cifar10.hpp), plain or gzipped.
// On success: n whole 3073-byte records, pixels and labels sized to match, labels 0..9, and
// the record bytes copied unchanged (checked for uncompressed input); on failure the
// nl::Error must name the file.
#include <cstring>

#include "data/cifar10.hpp"
#include "data/gzip_file.hpp"
#include "fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = nl::fuzz::scratch_path("cifar10");
  nl::fuzz::write_file(path, data, size);
  try {
    nl::data::ImageDataset ds = nl::data::read_cifar10_batch(path);
    FUZZ_REQUIRE(ds.n > 0 && ds.channels == 3 && ds.height == 32 && ds.width == 32 && ds.num_classes == 10);
    FUZZ_REQUIRE(ds.pixels.size() == static_cast<size_t>(ds.n * nl::data::kCifarImageBytes));
    FUZZ_REQUIRE(ds.labels.size() == static_cast<size_t>(ds.n));
    for (int32_t y : ds.labels) FUZZ_REQUIRE(y >= 0 && y < 10);
    if (!nl::data::is_gzip(data, size)) {
      FUZZ_REQUIRE(size == static_cast<size_t>(ds.n * nl::data::kCifarRecordBytes));
      for (int64_t i = 0; i < ds.n; ++i) {
        const uint8_t* rec = data + i * nl::data::kCifarRecordBytes;
        FUZZ_REQUIRE(ds.labels[i] == rec[0]);
        FUZZ_REQUIRE(std::memcmp(ds.image(i), rec + 1, nl::data::kCifarImageBytes) == 0);
      }
    }
    ds.validate();
  } catch (const nl::Error& e) {
    FUZZ_REQUIRE(std::strstr(e.what(), path.c_str()) != nullptr);
  }
  return 0;
}
