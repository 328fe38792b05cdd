// normlab data: the one in-memory representation every image dataset is loaded into, and
// its conversion to float tensors with input normalization.
//
// Pixels stay uint8 (N x C x H x W, row-major, channel planes like CIFAR's files) until a
// batch is built: 4x less memory than float, and augmentation (crop/flip) works on bytes.
// Input normalization is then a 256-entry lookup table per channel, so converting a batch
// costs one table lookup per pixel.
//
// Why normalize inputs at all: a network whose first layer sees inputs with mean 0.13 and
// std 0.31 (MNIST in [0,1]) trains, but its first-layer pre-activations start off-center,
// which is exactly the effect normalization layers correct deeper in the net. The
// statistics must come from the *training* set only, then be reused unchanged for the test
// set (computing them on test data would leak it).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace nl::data {

struct ImageDataset {
  std::string name;                      // e.g. "mnist/train", used in messages
  int64_t n = 0, channels = 0, height = 0, width = 0;
  std::vector<uint8_t> pixels;           // n * channels * height * width, NCHW
  std::vector<int32_t> labels;           // n, each in [0, num_classes)
  int32_t num_classes = 0;
  std::vector<std::string> class_names;  // num_classes entries (may be "0".."9")

  int64_t image_size() const { return channels * height * width; }  // bytes per image
  const uint8_t* image(int64_t i) const { return pixels.data() + i * image_size(); }
  Shape image_shape() const { return {channels, height, width}; }
  // Throws nl::Error if sizes disagree or a label is out of range.
  void validate() const;
};

// A train/test pair as shipped by MNIST, CIFAR-10, ...
struct DatasetSplit {
  ImageDataset train, test;
};

// Class names "0", "1", ..., for datasets without names.
std::vector<std::string> numbered_class_names(int32_t num_classes);

// Examples [begin, end) as a new dataset (copies the bytes).
ImageDataset subset(const ImageDataset& ds, int64_t begin, int64_t end);
// The given examples, in the given order, as a new dataset.
ImageDataset subset(const ImageDataset& ds, const std::vector<int64_t>& indices);
// Deterministically hold out round(fraction * n) examples (a seeded shuffle) as `test`.
DatasetSplit holdout_split(const ImageDataset& ds, double fraction, uint64_t seed);

// Per-channel pixel statistics in [0,1] units (pixel / 255). std is the population std.
struct ChannelStats {
  std::vector<double> mean, std, min, max;
};
ChannelStats channel_stats(const ImageDataset& ds);

// How bytes become floats. Every kind maps pixel p of channel c to p * scale[c] + shift[c].
struct Normalization {
  enum class Kind {
    Raw,          // p as a float, 0..255 (for inspection; not for training)
    UnitRange,    // p / 255, in [0, 1]
    MinMax,       // (p - min_c) / (max_c - min_c), min/max from the training set: [0, 1]
    Standardize,  // (p/255 - mean_c) / std_c, mean/std from the training set (or given)
  };
  Kind kind = Kind::UnitRange;
  std::vector<float> scale, shift;  // per channel
  std::vector<float> mean, std;     // Standardize: in [0,1] units, for reporting
  std::vector<float> min, max;      // MinMax: in [0,1] units, for reporting

  static Normalization raw(int64_t channels);
  static Normalization unit_range(int64_t channels);
  static Normalization min_max(const ImageDataset& train);
  static Normalization standardize(const ImageDataset& train);
  // Given statistics in [0,1] units, e.g. CIFAR's {0.4914, 0.4822, 0.4465} / {0.2470, ...}.
  static Normalization standardize(std::vector<float> mean, std::vector<float> std);

  int64_t channels() const { return static_cast<int64_t>(scale.size()); }
  std::string describe() const;  // "standardize mean=[0.1307] std=[0.3081]"
};

// Parses "none"/"raw", "unit"/"[0,1]", "minmax", "standardize"/"std" (statistics from train).
Normalization make_normalization(const std::string& kind, const ImageDataset& train);

// 256-entry lookup tables, one per channel: lut[c * 256 + p] = p * scale[c] + shift[c].
std::vector<float> normalization_lut(const Normalization& norm);

// Writes `count` images (NCHW bytes, channels planes of plane_size pixels each) as floats.
void normalize_images(const uint8_t* src, int64_t count, int64_t channels, int64_t plane_size,
                      const std::vector<float>& lut, float* dst);

// The whole dataset (or examples [begin, end)) as a float tensor [n, C, H, W].
Tensor to_tensor(const ImageDataset& ds, const Normalization& norm, int64_t begin = 0, int64_t end = -1);

}  // namespace nl::data
