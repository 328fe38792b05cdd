// normlab fuzz: the IDX reader (data/idx.hpp), images and labels files, plain or gzipped.
// Byte 0 of the input picks the entry point (even: read_idx_images, odd: read_idx_labels);
// the rest is the file. On success the result must match its header; on failure the
// nl::Error must name the file.
#include <cstring>

#include "data/idx.hpp"
#include "fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool images = (data[0] & 1) == 0;
  const std::string path = nl::fuzz::scratch_path("idx");
  nl::fuzz::write_file(path, data + 1, size - 1);
  try {
    if (images) {
      nl::data::IdxImages im = nl::data::read_idx_images(path);
      FUZZ_REQUIRE(im.count >= 0 && im.rows > 0 && im.cols > 0);
      FUZZ_REQUIRE(im.pixels.size() == static_cast<size_t>(im.count * im.rows * im.cols));
    } else {
      std::vector<int32_t> labels = nl::data::read_idx_labels(path, 10);
      for (int32_t y : labels) FUZZ_REQUIRE(y >= 0 && y < 10);
    }
  } catch (const nl::Error& e) {
    FUZZ_REQUIRE(std::strstr(e.what(), path.c_str()) != nullptr);
  }
  return 0;
}
