// normlab core: reading and writing the safetensors format (float32 tensors only).
//
// A safetensors file is (https://github.com/huggingface/safetensors):
//   8 bytes   N, the header length, unsigned little-endian
//   N bytes   JSON: {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
//                    ..., "__metadata__": {"<key>": "<string value>", ...}}
//             (padded with spaces so the data starts 8-byte aligned)
//   the rest  the data section: raw little-endian tensor bytes; data_offsets are relative
//             to its start, and the tensors tile it exactly (no gaps, no overlaps).
//
// normlab uses it for PyTorch fixtures (tests/fixtures) and checkpoints. Python reads our
// files with `safetensors.torch.load_file` and we read theirs, as long as they are F32.
//
// Reading never trusts the file: every inconsistency (truncation, bad JSON, a dtype other
// than F32, offsets out of range or overlapping, a shape that does not match its byte
// count, duplicate names) throws nl::Error naming the file and the problem.
// Writing is crash-safe: the bytes go to "<path>.tmp.<pid>", are fsync'ed, and only then
// renamed over <path>, so <path> is always either the old file or the complete new one.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.hpp"

namespace nl {

struct TensorFile {
  std::string path;  // where it was loaded from (used in error messages)
  // In data-section order, which is the order save_safetensors() was given.
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::map<std::string, std::string> metadata;  // the "__metadata__" object

  bool contains(const std::string& name) const;
  // The tensor called `name`; throws nl::Error listing the available names if absent.
  const Tensor& get(const std::string& name) const;
  // The metadata value for `key`; throws nl::Error if absent.
  const std::string& meta(const std::string& key) const;
};

// Writes `tensors` (any layout; stored row-major) and string metadata to `path`.
// Names must be unique, non-empty and not "__metadata__"; every tensor must be defined.
// All checks happen before anything is written; on failure the old file is untouched.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads a whole file. Tensors are fresh, contiguous and do not require grad.
TensorFile load_safetensors(const std::string& path);

}  // namespace nl
