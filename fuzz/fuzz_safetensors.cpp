// normlab fuzz: the safetensors checkpoint reader (core/safetensors.hpp load_safetensors).
// The input is written to a scratch file and loaded. On success, every tensor must be
// contiguous float32 whose bytes are those of the file, and a save/load round trip must
// give the same names, shapes, values and metadata. On failure the nl::Error must name the
// file.
#include <cstring>

#include "core/safetensors.hpp"
#include "fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = nl::fuzz::scratch_path("safetensors");
  nl::fuzz::write_file(path, data, size);
  nl::TensorFile tf;
  try {
    tf = nl::load_safetensors(path);
  } catch (const nl::Error& e) {
    FUZZ_REQUIRE(std::strstr(e.what(), path.c_str()) != nullptr);
    return 0;
  }
  FUZZ_REQUIRE(size >= 8);
  uint64_t header = 0;
  for (int i = 0; i < 8; ++i) header |= static_cast<uint64_t>(data[i]) << (8 * i);
  // The tensors tile the data section in order, so their bytes are the file's tail.
  size_t pos = 8 + header;
  for (const auto& [name, t] : tf.tensors) {
    FUZZ_REQUIRE(t.defined() && t.is_contiguous());
    const size_t bytes = static_cast<size_t>(t.numel()) * sizeof(float);
    FUZZ_REQUIRE(pos + bytes <= size);
    FUZZ_REQUIRE(bytes == 0 || std::memcmp(t.data(), data + pos, bytes) == 0);
    pos += bytes;
  }
  FUZZ_REQUIRE(pos == size);

  // Round trip (names starting with "__metadata__" are reserved and cannot be saved back).
  const std::string copy = nl::fuzz::scratch_path("safetensors_copy");
  nl::save_safetensors(copy, tf.tensors, tf.metadata);
  nl::TensorFile back = nl::load_safetensors(copy);
  FUZZ_REQUIRE(back.tensors.size() == tf.tensors.size() && back.metadata == tf.metadata);
  for (size_t i = 0; i < tf.tensors.size(); ++i) {
    const nl::Tensor &a = tf.tensors[i].second, &b = back.tensors[i].second;
    FUZZ_REQUIRE(back.tensors[i].first == tf.tensors[i].first && a.shape() == b.shape());
    FUZZ_REQUIRE(std::memcmp(a.data(), b.data(), static_cast<size_t>(a.numel()) * sizeof(float)) == 0);
  }
  return 0;
}
