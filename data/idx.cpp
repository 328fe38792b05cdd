// normlab data: IDX reader for MNIST / Fashion-MNIST (format described in idx.hpp).
#include "data/idx.hpp"

#include <cstring>
#include <filesystem>

#include "data/gzip_file.hpp"

namespace nl::data {

namespace {

uint32_t read_be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

// Checks the magic and that the file is exactly header + payload bytes long.
void check_idx(const std::string& path, const std::vector<uint8_t>& bytes, uint32_t want_magic, size_t header,
               const char* what) {
  NL_CHECK(bytes.size() >= 4, "'", path, "': too short for an IDX ", what, " file: ", bytes.size(),
           " bytes, not even a magic number");
  uint32_t magic = read_be32(bytes.data());
  if (magic != want_magic) {
    std::string hint;
    if (magic == kIdxImagesMagic) hint = " (this is an IDX images file; labels and images swapped?)";
    if (magic == kIdxLabelsMagic) hint = " (this is an IDX labels file; labels and images swapped?)";
    // A gzip file that was not decompressed would show 0x1f8b....: we already inflate those,
    // so a wrong magic usually means a different file type altogether.
    throw Error("'" + path + "': wrong magic number " + std::to_string(magic) + " for an IDX " + what +
                " file, expected " + std::to_string(want_magic) + hint);
  }
  NL_CHECK(bytes.size() >= header, "'", path, "': too short for an IDX ", what, " file: ", bytes.size(),
           " bytes, the header alone is ", header, " bytes");
}

void check_length(const std::string& path, size_t actual, size_t header, uint64_t payload, const char* what) {
  uint64_t expected = header + payload;
  if (actual < expected)
    throw Error("'" + path + "': truncated IDX " + what + " file: expected " + std::to_string(expected) +
                " bytes (header " + std::to_string(header) + " + payload " + std::to_string(payload) + "), got " +
                std::to_string(actual) + " (" + std::to_string(expected - actual) + " missing)");
  if (actual > expected)
    throw Error("'" + path + "': IDX " + what + " file has " + std::to_string(actual - expected) +
                " unexpected extra bytes: expected " + std::to_string(expected) + " bytes, got " +
                std::to_string(actual));
}

}  // namespace

IdxImages read_idx_images(const std::string& path) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  constexpr size_t kHeader = 16;  // magic, count, rows, cols
  check_idx(path, bytes, kIdxImagesMagic, kHeader, "images");
  IdxImages out;
  out.count = read_be32(bytes.data() + 4);
  out.rows = read_be32(bytes.data() + 8);
  out.cols = read_be32(bytes.data() + 12);
  NL_CHECK(out.rows > 0 && out.cols > 0 && out.rows <= 65536 && out.cols <= 65536, "'", path,
           "': implausible IDX image size ", out.rows, " x ", out.cols);
  check_length(path, bytes.size(), kHeader, uint64_t(out.count) * out.rows * out.cols, "images");
  // Drop the header in place rather than copying 47 MB into a second buffer.
  bytes.erase(bytes.begin(), bytes.begin() + kHeader);
  out.pixels = std::move(bytes);
  return out;
}

std::vector<int32_t> read_idx_labels(const std::string& path, int32_t num_classes) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  constexpr size_t kHeader = 8;  // magic, count
  check_idx(path, bytes, kIdxLabelsMagic, kHeader, "labels");
  const uint64_t count = read_be32(bytes.data() + 4);
  check_length(path, bytes.size(), kHeader, count, "labels");
  std::vector<int32_t> labels(count);
  for (uint64_t i = 0; i < count; ++i) {
    int32_t y = bytes[kHeader + i];
    if (y >= num_classes)
      throw Error("'" + path + "': label " + std::to_string(y) + " of example " + std::to_string(i) +
                  " is outside 0.." + std::to_string(num_classes - 1));
    labels[i] = y;
  }
  return labels;
}

ImageDataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                              const std::string& name, int32_t num_classes) {
  IdxImages images = read_idx_images(images_path);
  std::vector<int32_t> labels = read_idx_labels(labels_path, num_classes);
  NL_CHECK(static_cast<int64_t>(labels.size()) == images.count, "image/label count mismatch: '", images_path,
           "' has ", images.count, " images but '", labels_path, "' has ", labels.size(), " labels");
  ImageDataset ds;
  ds.name = name;
  ds.n = images.count;
  ds.channels = 1;
  ds.height = images.rows;
  ds.width = images.cols;
  ds.pixels = std::move(images.pixels);
  ds.labels = std::move(labels);
  ds.num_classes = num_classes;
  ds.class_names = numbered_class_names(num_classes);
  return ds;
}

const std::vector<std::string>& idx_file_names() {
  static const std::vector<std::string> names = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
  return names;
}

DatasetSplit load_idx_dir(const std::string& dir, const std::string& name, std::vector<std::string> class_names) {
  std::string paths[4];
  for (int k = 0; k < 4; ++k) {
    paths[k] = find_plain_or_gz(dir, idx_file_names()[k]);
    NL_CHECK(!paths[k].empty(), "dataset '", name, "': missing file '",
             (std::filesystem::path(dir) / idx_file_names()[k]).string(), "' (or .gz)");
  }
  DatasetSplit split;
  split.train = load_idx_dataset(paths[0], paths[1], name + "/train");
  split.test = load_idx_dataset(paths[2], paths[3], name + "/test");
  NL_CHECK(split.train.height == split.test.height && split.train.width == split.test.width, "dataset '", name,
           "': train images are ", split.train.height, "x", split.train.width, " but test images are ",
           split.test.height, "x", split.test.width);
  if (!class_names.empty()) {
    NL_CHECK(class_names.size() == 10, "load_idx_dir: need 10 class names, got ", class_names.size());
    split.train.class_names = class_names;
    split.test.class_names = std::move(class_names);
  }
  return split;
}

std::vector<std::string> fashion_mnist_class_names() {
  return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
}

}  // namespace nl::data
