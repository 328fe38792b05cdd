// normlab data: CIFAR-10 binary batches (format described in cifar10.hpp).
#include "data/cifar10.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>

#include "data/gzip_file.hpp"

namespace nl::data {

std::vector<std::string> cifar10_default_class_names() {
  return {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
}

namespace {

// Appends the records in `bytes` (the contents of `path`) to `ds`.
void append_records(ImageDataset& ds, const std::vector<uint8_t>& bytes, const std::string& path) {
  const int64_t size = static_cast<int64_t>(bytes.size());
  NL_CHECK(size > 0, "'", path, "': empty CIFAR-10 batch file");
  if (size % kCifarRecordBytes != 0)
    throw Error("'" + path + "': length " + std::to_string(size) + " is not a multiple of the CIFAR-10 record size " +
                std::to_string(kCifarRecordBytes) + " (1 label + 3072 pixels): " +
                std::to_string(size / kCifarRecordBytes) + " whole records and " +
                std::to_string(size % kCifarRecordBytes) + " stray bytes; the file is truncated or not a " +
                "CIFAR-10 binary batch (the CIFAR-100 format has 2 label bytes)");
  const int64_t count = size / kCifarRecordBytes;
  if (ds.n == 0 && ds.pixels.empty()) {
    ds.channels = 3;
    ds.height = 32;
    ds.width = 32;
    ds.num_classes = 10;
  }
  NL_CHECK(ds.channels == 3 && ds.height == 32 && ds.width == 32, "append_cifar10_batch: dataset '", ds.name,
           "' is not 3x32x32");
  const int64_t first = ds.n;
  ds.pixels.resize((first + count) * kCifarImageBytes);
  ds.labels.resize(first + count);
  const uint8_t* rec = bytes.data();
  uint8_t* dst = ds.pixels.data() + first * kCifarImageBytes;
  for (int64_t i = 0; i < count; ++i, rec += kCifarRecordBytes, dst += kCifarImageBytes) {
    if (rec[0] > 9)
      throw Error("'" + path + "': label " + std::to_string(rec[0]) + " of record " + std::to_string(i) +
                  " is outside 0..9 (not a CIFAR-10 batch?)");
    ds.labels[first + i] = rec[0];
    std::memcpy(dst, rec + 1, kCifarImageBytes);  // R, G, B planes: already NCHW
  }
  ds.n = first + count;
}

}  // namespace

void append_cifar10_batch(ImageDataset& ds, const std::string& path) { append_records(ds, read_file_bytes(path), path); }

ImageDataset read_cifar10_batch(const std::string& path) {
  ImageDataset ds;
  ds.name = path;
  append_cifar10_batch(ds, path);
  ds.class_names = cifar10_default_class_names();
  return ds;
}

std::vector<std::string> read_cifar10_class_names(const std::string& dir) {
  std::filesystem::path meta = std::filesystem::path(dir) / "batches.meta.txt";
  std::ifstream in(meta);
  if (!in) return {};
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    // The official file pads lines with spaces and ends with blank lines: trim both.
    const char* ws = " \t\r\n";
    size_t b = line.find_first_not_of(ws);
    if (b == std::string::npos) continue;
    names.push_back(line.substr(b, line.find_last_not_of(ws) - b + 1));
  }
  return names;
}

DatasetSplit load_cifar10_dir(const std::string& dir) {
  std::vector<std::string> names = read_cifar10_class_names(dir);
  if (names.empty()) names = cifar10_default_class_names();
  NL_CHECK(names.size() == 10, "'", (std::filesystem::path(dir) / "batches.meta.txt").string(), "': ",
           names.size(), " class names, CIFAR-10 has 10");

  auto find = [&](const std::string& file) {
    std::string p = find_plain_or_gz(dir, file);
    NL_CHECK(!p.empty(), "CIFAR-10: missing file '", (std::filesystem::path(dir) / file).string(), "' (or .gz)");
    return p;
  };
  DatasetSplit split;
  split.train.name = "cifar10/train";
  split.train.pixels.reserve(50000 * kCifarImageBytes);
  split.train.labels.reserve(50000);
  split.test.name = "cifar10/test";
  std::vector<std::string> paths;
  for (int b = 1; b <= 5; ++b) paths.push_back(find("data_batch_" + std::to_string(b) + ".bin"));
  paths.push_back(find("test_batch.bin"));

  // gunzip is single-threaded and dominates the load time (184 MB to inflate), so two files
  // are decompressed at once on worker threads while this thread copies records out of the
  // previous one. At most two decompressed files are alive at a time. Files are appended in
  // order, so the result does not depend on thread timing.
  std::vector<std::future<std::vector<uint8_t>>> pending(paths.size());
  auto launch = [&](size_t k) {
    if (k < paths.size()) pending[k] = std::async(std::launch::async, read_file_bytes, paths[k]);
  };
  launch(0);
  launch(1);
  for (size_t k = 0; k < paths.size(); ++k) {
    std::vector<uint8_t> bytes = pending[k].get();  // rethrows a read error of file k
    launch(k + 2);
    append_records(k < 5 ? split.train : split.test, bytes, paths[k]);
  }
  split.train.class_names = names;
  split.test.class_names = names;
  return split;
}

}  // namespace nl::data
