// normlab data: CIFAR-10, "binary version".
//
// Format: a batch file is a sequence of 3073-byte records, nothing between them and no
// header: 1 label byte (0..9), then 3072 pixel bytes = the 1024 red values, the 1024 green
// values, the 1024 blue values, each plane 32x32 row-major. The official batches hold 10000
// records (30,730,000 bytes). That planar layout is already our NCHW layout, so a record's
// pixels are copied as they are.
//
// A dataset directory ("cifar-10-batches-bin") holds data_batch_1.bin .. data_batch_5.bin
// (training, 50000 images), test_batch.bin (10000) and batches.meta.txt (class names, one
// per line, label 0 first). Any .bin may be gzipped as .bin.gz.
#pragma once

#include <string>
#include <vector>

#include "data/dataset.hpp"

namespace nl::data {

constexpr int64_t kCifarImageBytes = 3 * 32 * 32;
constexpr int64_t kCifarRecordBytes = 1 + kCifarImageBytes;

// One batch file (plain or .gz); validates length and labels, naming the file on error.
ImageDataset read_cifar10_batch(const std::string& path);

// Append the records of `path` to `ds` (which must be empty or already CIFAR-shaped).
void append_cifar10_batch(ImageDataset& ds, const std::string& path);

// The whole directory. Class names come from batches.meta.txt when present, else the
// standard ten names.
DatasetSplit load_cifar10_dir(const std::string& dir);

// Non-empty, whitespace-trimmed lines of batches.meta.txt; {} if the file is absent.
std::vector<std::string> read_cifar10_class_names(const std::string& dir);
std::vector<std::string> cifar10_default_class_names();

}  // namespace nl::data
