// normlab data: ImageDataset helpers and input normalization (see dataset.hpp).
#include "data/dataset.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>

#include "core/random.hpp"

namespace nl::data {

void ImageDataset::validate() const {
  NL_CHECK(n >= 0 && channels > 0 && height > 0 && width > 0, "dataset '", name, "': bad shape n=", n,
           " C=", channels, " H=", height, " W=", width);
  NL_CHECK(static_cast<int64_t>(pixels.size()) == n * image_size(), "dataset '", name, "': ",
           static_cast<int64_t>(pixels.size()), " pixel bytes, expected n*C*H*W = ", n * image_size());
  NL_CHECK(static_cast<int64_t>(labels.size()) == n, "dataset '", name, "': ",
           static_cast<int64_t>(labels.size()), " labels for ", n, " images");
  NL_CHECK(num_classes > 0, "dataset '", name, "': num_classes must be positive");
  NL_CHECK(class_names.empty() || static_cast<int32_t>(class_names.size()) == num_classes, "dataset '", name,
           "': ", static_cast<int64_t>(class_names.size()), " class names for ", num_classes, " classes");
  for (int64_t i = 0; i < n; ++i)
    NL_CHECK(labels[i] >= 0 && labels[i] < num_classes, "dataset '", name, "': label ", labels[i],
             " of example ", i, " is outside 0..", num_classes - 1);
}

std::vector<std::string> numbered_class_names(int32_t num_classes) {
  std::vector<std::string> names;
  for (int32_t k = 0; k < num_classes; ++k) names.push_back(std::to_string(k));
  return names;
}

namespace {
ImageDataset empty_like(const ImageDataset& ds, int64_t n) {
  ImageDataset out;
  out.name = ds.name;
  out.n = n;
  out.channels = ds.channels;
  out.height = ds.height;
  out.width = ds.width;
  out.num_classes = ds.num_classes;
  out.class_names = ds.class_names;
  out.pixels.resize(n * ds.image_size());
  out.labels.resize(n);
  return out;
}
}  // namespace

ImageDataset subset(const ImageDataset& ds, int64_t begin, int64_t end) {
  NL_CHECK(0 <= begin && begin <= end && end <= ds.n, "subset of '", ds.name, "': range [", begin, ", ", end,
           ") is outside 0..", ds.n);
  ImageDataset out = empty_like(ds, end - begin);
  std::memcpy(out.pixels.data(), ds.image(begin), out.pixels.size());
  std::copy(ds.labels.begin() + begin, ds.labels.begin() + end, out.labels.begin());
  return out;
}

ImageDataset subset(const ImageDataset& ds, const std::vector<int64_t>& indices) {
  ImageDataset out = empty_like(ds, static_cast<int64_t>(indices.size()));
  const int64_t sz = ds.image_size();
  for (size_t k = 0; k < indices.size(); ++k) {
    int64_t i = indices[k];
    NL_CHECK(i >= 0 && i < ds.n, "subset of '", ds.name, "': index ", i, " is outside 0..", ds.n - 1);
    std::memcpy(out.pixels.data() + k * sz, ds.image(i), sz);
    out.labels[k] = ds.labels[i];
  }
  return out;
}

DatasetSplit holdout_split(const ImageDataset& ds, double fraction, uint64_t seed) {
  NL_CHECK(fraction >= 0.0 && fraction < 1.0, "holdout_split: fraction must be in [0, 1), got ", fraction);
  std::vector<int64_t> order(ds.n);
  std::iota(order.begin(), order.end(), 0);
  Generator gen(seed);
  for (int64_t i = ds.n - 1; i > 0; --i) std::swap(order[i], order[gen.below(i + 1)]);  // Fisher-Yates
  const int64_t n_test = std::llround(fraction * static_cast<double>(ds.n));
  std::vector<int64_t> test_idx(order.begin(), order.begin() + n_test);
  std::vector<int64_t> train_idx(order.begin() + n_test, order.end());
  // Keep the original order inside each part: easier to reason about when debugging.
  std::sort(test_idx.begin(), test_idx.end());
  std::sort(train_idx.begin(), train_idx.end());
  DatasetSplit split{subset(ds, train_idx), subset(ds, test_idx)};
  split.train.name = ds.name + "/train";
  split.test.name = ds.name + "/holdout";
  return split;
}

ChannelStats channel_stats(const ImageDataset& ds) {
  // A histogram per channel, then exact sums in double: one increment per pixel, and no
  // float accumulation error even over 150 M CIFAR pixels.
  const int64_t C = ds.channels, plane = ds.height * ds.width;
  std::vector<std::array<uint64_t, 256>> hist(C);
  for (auto& h : hist) h.fill(0);
  for (int64_t i = 0; i < ds.n; ++i) {
    const uint8_t* img = ds.image(i);
    for (int64_t c = 0; c < C; ++c) {
      auto& h = hist[c];
      const uint8_t* p = img + c * plane;
      for (int64_t k = 0; k < plane; ++k) ++h[p[k]];
    }
  }
  ChannelStats st;
  for (int64_t c = 0; c < C; ++c) {
    double count = 0, sum = 0, sum_sq = 0;
    int lo = 255, hi = 0;
    for (int v = 0; v < 256; ++v) {
      double k = static_cast<double>(hist[c][v]);
      if (k == 0) continue;
      count += k;
      sum += k * v;
      sum_sq += k * v * v;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    NL_CHECK(count > 0, "channel_stats: dataset '", ds.name, "' is empty");
    double mean = sum / count;
    double var = std::max(0.0, sum_sq / count - mean * mean);
    st.mean.push_back(mean / 255.0);
    st.std.push_back(std::sqrt(var) / 255.0);
    st.min.push_back(lo / 255.0);
    st.max.push_back(hi / 255.0);
  }
  return st;
}

Normalization Normalization::raw(int64_t channels) {
  Normalization nm;
  nm.kind = Kind::Raw;
  nm.scale.assign(channels, 1.0f);
  nm.shift.assign(channels, 0.0f);
  return nm;
}

Normalization Normalization::unit_range(int64_t channels) {
  Normalization nm;
  nm.kind = Kind::UnitRange;
  nm.scale.assign(channels, 1.0f / 255.0f);
  nm.shift.assign(channels, 0.0f);
  return nm;
}

Normalization Normalization::min_max(const ImageDataset& train) {
  ChannelStats st = channel_stats(train);
  Normalization nm;
  nm.kind = Kind::MinMax;
  for (int64_t c = 0; c < train.channels; ++c) {
    // A constant channel has no range: fall back to [0,1] scaling instead of dividing by 0.
    double range = st.max[c] - st.min[c];
    if (range <= 0) range = 1.0;
    nm.min.push_back(static_cast<float>(st.min[c]));
    nm.max.push_back(static_cast<float>(st.max[c]));
    nm.scale.push_back(static_cast<float>(1.0 / (255.0 * range)));
    nm.shift.push_back(static_cast<float>(-st.min[c] / range));
  }
  return nm;
}

Normalization Normalization::standardize(const ImageDataset& train) {
  ChannelStats st = channel_stats(train);
  std::vector<float> mean(st.mean.begin(), st.mean.end()), stdv(st.std.begin(), st.std.end());
  return standardize(mean, stdv);
}

Normalization Normalization::standardize(std::vector<float> mean, std::vector<float> std) {
  NL_CHECK(!mean.empty() && mean.size() == std.size(), "Normalization::standardize: need one mean and one std per "
           "channel, got ", mean.size(), " means and ", std.size(), " stds");
  Normalization nm;
  nm.kind = Kind::Standardize;
  for (size_t c = 0; c < mean.size(); ++c) {
    // A constant channel has std 0: only center it rather than divide by zero.
    double s = std[c] > 1e-12f ? std[c] : 1.0;
    nm.scale.push_back(static_cast<float>(1.0 / (255.0 * s)));
    nm.shift.push_back(static_cast<float>(-mean[c] / s));
  }
  nm.mean = std::move(mean);
  nm.std = std::move(std);
  return nm;
}

namespace {
std::string list(const std::vector<float>& v) {
  std::string s = "[";
  char buf[32];
  for (size_t i = 0; i < v.size(); ++i) {
    std::snprintf(buf, sizeof(buf), "%s%.4f", i ? ", " : "", v[i]);
    s += buf;
  }
  return s + "]";
}
}  // namespace

std::string Normalization::describe() const {
  switch (kind) {
    case Kind::Raw: return "raw 0..255";
    case Kind::UnitRange: return "unit range p/255";
    case Kind::MinMax: return "minmax min=" + list(min) + " max=" + list(max);
    case Kind::Standardize: return "standardize mean=" + list(mean) + " std=" + list(std);
  }
  return "?";
}

Normalization make_normalization(const std::string& kind, const ImageDataset& train) {
  if (kind == "none" || kind == "raw") return Normalization::raw(train.channels);
  if (kind == "unit" || kind == "[0,1]" || kind == "unit_range") return Normalization::unit_range(train.channels);
  if (kind == "minmax" || kind == "min-max" || kind == "min_max") return Normalization::min_max(train);
  if (kind == "standardize" || kind == "std" || kind == "zscore") return Normalization::standardize(train);
  throw Error("unknown input normalization '" + kind + "' (expected none, unit, minmax or standardize)");
}

std::vector<float> normalization_lut(const Normalization& norm) {
  std::vector<float> lut(norm.channels() * 256);
  for (int64_t c = 0; c < norm.channels(); ++c)
    for (int p = 0; p < 256; ++p) lut[c * 256 + p] = static_cast<float>(p) * norm.scale[c] + norm.shift[c];
  return lut;
}

void normalize_images(const uint8_t* src, int64_t count, int64_t channels, int64_t plane_size,
                      const std::vector<float>& lut, float* dst) {
  NL_CHECK(static_cast<int64_t>(lut.size()) == channels * 256, "normalize_images: normalization has ",
           static_cast<int64_t>(lut.size()) / 256, " channels, images have ", channels);
  for (int64_t i = 0; i < count; ++i)
    for (int64_t c = 0; c < channels; ++c) {
      const float* table = lut.data() + c * 256;
      for (int64_t k = 0; k < plane_size; ++k) *dst++ = table[*src++];
    }
}

Tensor to_tensor(const ImageDataset& ds, const Normalization& norm, int64_t begin, int64_t end) {
  if (end < 0) end = ds.n;
  NL_CHECK(0 <= begin && begin <= end && end <= ds.n, "to_tensor('", ds.name, "'): range [", begin, ", ", end,
           ") is outside 0..", ds.n);
  Tensor t = Tensor::empty({end - begin, ds.channels, ds.height, ds.width});
  normalize_images(ds.image(begin), end - begin, ds.channels, ds.height * ds.width, normalization_lut(norm),
                   t.data());
  return t;
}

}  // namespace nl::data
