// normlab data: the IDX format of MNIST and Fashion-MNIST.
//
// Format (all header integers are 32-bit big-endian):
//   images file: magic 0x00000803 (2051), count N, rows R, cols C, then N*R*C unsigned bytes,
//                image after image, each row-major; 0 = background, 255 = ink.
//   labels file: magic 0x00000801 (2049), count N, then N unsigned bytes 0..9.
// (The magic encodes the element type 0x08 = u8 in its third byte and the number of
// dimensions in its fourth: 3 for images, 1 for labels.)
//
// The standard layout of a dataset directory is four files, each optionally gzipped:
//   train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte  t10k-labels-idx1-ubyte
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.hpp"

namespace nl::data {

constexpr uint32_t kIdxImagesMagic = 2051;
constexpr uint32_t kIdxLabelsMagic = 2049;

struct IdxImages {
  int64_t count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // count * rows * cols
};

// Read one file (plain or .gz). Every validation failure names the file.
IdxImages read_idx_images(const std::string& path);
std::vector<int32_t> read_idx_labels(const std::string& path, int32_t num_classes = 10);

// Images + labels as an ImageDataset with C = 1; checks that the counts match.
ImageDataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                              const std::string& name, int32_t num_classes = 10);

// The four-file layout of `dir` (each file plain or .gz). `name` prefixes the dataset names
// ("mnist" -> "mnist/train", "mnist/test"); class_names default to "0".."9".
DatasetSplit load_idx_dir(const std::string& dir, const std::string& name = "mnist",
                          std::vector<std::string> class_names = {});

// Fashion-MNIST's class names, label 0 first (T-shirt/top, Trouser, ...).
std::vector<std::string> fashion_mnist_class_names();

// The four standard file names (without .gz), train images first.
const std::vector<std::string>& idx_file_names();

}  // namespace nl::data
