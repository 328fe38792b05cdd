// Tests of data/: every reader on small files written here (plain and gzip), every
// validation error (which must name the offending file), augmentation, normalization and
// the DataLoader's coverage/determinism. The last tests load the real datasets from
// $NORMLAB_DATA_DIR, else ../shared/data next to the repository, when present, and are
// skipped (with a message) otherwise.
#include <catch2/catch.hpp>
#include <zlib.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <unistd.h>

#include "data/cifar10.hpp"
#include "data/dataset.hpp"
#include "data/gzip_file.hpp"
#include "data/idx.hpp"
#include "data/image_folder.hpp"
#include "data/loader.hpp"
#include "data/registry.hpp"
#include "data/text_corpus.hpp"
#include "data/transforms.hpp"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace fs = std::filesystem;
using namespace nl::data;
using Catch::Matchers::Contains;
using Bytes = std::vector<uint8_t>;

namespace {

// A fresh directory under the system temp dir, removed at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("normlab_test_data_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

void write_bytes(const std::string& path, const Bytes& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

Bytes gzip_bytes(const Bytes& bytes) {
  // deflateInit2 with windowBits 15+16 writes a gzip wrapper, like the gzip tool.
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  Bytes out(deflateBound(&zs, bytes.size()) + 32);
  zs.next_in = const_cast<Bytef*>(bytes.data());
  zs.avail_in = static_cast<uInt>(bytes.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

void write_gz(const std::string& path, const Bytes& bytes) { write_bytes(path, gzip_bytes(bytes)); }

void put_be32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}

Bytes idx_images(uint32_t n, uint32_t rows, uint32_t cols, const Bytes& pixels, uint32_t magic = 2051) {
  Bytes b;
  put_be32(b, magic);
  put_be32(b, n);
  put_be32(b, rows);
  put_be32(b, cols);
  b.insert(b.end(), pixels.begin(), pixels.end());
  return b;
}

Bytes idx_labels(const Bytes& labels, uint32_t magic = 2049) {
  Bytes b;
  put_be32(b, magic);
  put_be32(b, static_cast<uint32_t>(labels.size()));
  b.insert(b.end(), labels.begin(), labels.end());
  return b;
}

// The message of the nl::Error thrown by f, or a marker that makes Contains() fail.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const nl::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<not an nl::Error: ") + e.what() + ">";
  }
  return "<no exception>";
}

Bytes iota_bytes(size_t n, int start = 0, int step = 1) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>((start + step * static_cast<int>(i)) & 0xFF);
  return b;
}

// A small in-memory dataset whose label is the example index mod num_classes and whose
// first pixel is the example index: lets a test tell examples apart after batching.
ImageDataset synthetic(int64_t n, int64_t c, int64_t h, int64_t w, uint64_t seed = 7) {
  ImageDataset ds;
  ds.name = "synthetic";
  ds.n = n;
  ds.channels = c;
  ds.height = h;
  ds.width = w;
  ds.num_classes = 10;
  ds.class_names = numbered_class_names(10);
  ds.pixels.resize(n * c * h * w);
  nl::Generator gen(seed);
  for (auto& p : ds.pixels) p = static_cast<uint8_t>(gen.below(256));
  for (int64_t i = 0; i < n; ++i) {
    ds.labels.push_back(static_cast<int32_t>(i % 10));
    ds.pixels[i * c * h * w] = static_cast<uint8_t>(i);
  }
  return ds;
}

}  // namespace

// ---------------------------------------------------------------- gzip / whole files

TEST_CASE("read_file_bytes reads plain and gzip files identically", "[data][gzip]") {
  TempDir tmp;
  Bytes payload = iota_bytes(100000, 3, 7);
  write_bytes(tmp / "a.bin", payload);
  write_gz(tmp / "a.bin.gz", payload);
  write_gz(tmp / "renamed.bin", payload);  // gzip detected by magic, not by suffix
  CHECK(read_file_bytes(tmp / "a.bin") == payload);
  CHECK(read_file_bytes(tmp / "a.bin.gz") == payload);
  CHECK(read_file_bytes(tmp / "renamed.bin") == payload);

  // Two members back to back decode as the concatenation (like `cat a.gz b.gz | gunzip`).
  Bytes two = gzip_bytes({1, 2, 3});
  Bytes second = gzip_bytes({4, 5});
  two.insert(two.end(), second.begin(), second.end());
  write_bytes(tmp / "two.gz", two);
  CHECK(read_file_bytes(tmp / "two.gz") == Bytes{1, 2, 3, 4, 5});

  write_bytes(tmp / "empty", {});
  CHECK(read_file_bytes(tmp / "empty").empty());
}

TEST_CASE("truncated, corrupt and missing gzip files give errors naming the file", "[data][gzip]") {
  TempDir tmp;
  Bytes gz = gzip_bytes(iota_bytes(50000, 0, 13));
  Bytes truncated(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(gz.size() / 2));
  write_bytes(tmp / "trunc.gz", truncated);
  std::string msg = error_of([&] { read_file_bytes(tmp / "trunc.gz"); });
  CHECK_THAT(msg, Contains(tmp / "trunc.gz") && Contains("truncated"));

  Bytes no_trailer(gz.begin(), gz.end() - 4);  // the length field of the trailer is missing
  write_bytes(tmp / "notrailer.gz", no_trailer);
  CHECK_THAT(error_of([&] { read_file_bytes(tmp / "notrailer.gz"); }), Contains(tmp / "notrailer.gz"));

  Bytes corrupt = gz;
  for (size_t i = 20; i < 60; ++i) corrupt[i] ^= 0x5A;
  write_bytes(tmp / "corrupt.gz", corrupt);
  CHECK_THAT(error_of([&] { read_file_bytes(tmp / "corrupt.gz"); }), Contains(tmp / "corrupt.gz"));

  Bytes bad_crc = gz;
  bad_crc[bad_crc.size() - 8] ^= 0xFF;  // first byte of the CRC-32
  write_bytes(tmp / "crc.gz", bad_crc);
  CHECK_THAT(error_of([&] { read_file_bytes(tmp / "crc.gz"); }), Contains(tmp / "crc.gz") && Contains("corrupt"));

  CHECK_THAT(error_of([&] { read_file_bytes(tmp / "nope"); }), Contains(tmp / "nope"));
}

// ---------------------------------------------------------------- IDX

TEST_CASE("IDX images and labels round-trip exactly, plain and gzip", "[data][idx]") {
  TempDir tmp;
  const uint32_t n = 3, rows = 4, cols = 5;
  Bytes pixels = iota_bytes(n * rows * cols, 200, 11);
  Bytes labels = {7, 0, 9};
  write_bytes(tmp / "mnist/train-images-idx3-ubyte", idx_images(n, rows, cols, pixels));
  write_gz(tmp / "mnist/train-labels-idx1-ubyte.gz", idx_labels(labels));
  write_gz(tmp / "mnist/t10k-images-idx3-ubyte.gz", idx_images(1, rows, cols, Bytes(rows * cols, 255)));
  write_bytes(tmp / "mnist/t10k-labels-idx1-ubyte", idx_labels({4}));

  IdxImages im = read_idx_images(tmp / "mnist/train-images-idx3-ubyte");
  CHECK(im.count == n);
  CHECK(im.rows == rows);
  CHECK(im.cols == cols);
  CHECK(im.pixels == pixels);
  CHECK(read_idx_labels(tmp / "mnist/train-labels-idx1-ubyte.gz") == std::vector<int32_t>{7, 0, 9});

  DatasetSplit split = load_idx_dir(tmp / "mnist");
  CHECK(split.train.n == 3);
  CHECK(split.train.channels == 1);
  CHECK(split.train.height == 4);
  CHECK(split.train.width == 5);
  CHECK(split.train.pixels == pixels);
  CHECK(split.train.labels == std::vector<int32_t>{7, 0, 9});
  CHECK(split.train.num_classes == 10);
  CHECK(split.test.n == 1);
  CHECK(split.test.pixels == Bytes(20, 255));
  CHECK(split.test.labels == std::vector<int32_t>{4});
  split.train.validate();
}

TEST_CASE("IDX validation errors name the file and the problem", "[data][idx]") {
  TempDir tmp;
  Bytes pixels = iota_bytes(2 * 3 * 3);
  Bytes good = idx_images(2, 3, 3, pixels);

  SECTION("truncated images: expected and actual byte counts") {
    Bytes cut(good.begin(), good.end() - 5);
    write_gz(tmp / "imgs.gz", cut);
    std::string msg = error_of([&] { read_idx_images(tmp / "imgs.gz"); });
    CHECK_THAT(msg, Contains(tmp / "imgs.gz") && Contains("truncated") && Contains("expected 34") &&
                        Contains("got 29"));
  }
  SECTION("header shorter than 16 bytes") {
    write_bytes(tmp / "imgs", Bytes(good.begin(), good.begin() + 10));
    CHECK_THAT(error_of([&] { read_idx_images(tmp / "imgs"); }), Contains(tmp / "imgs") && Contains("too short"));
  }
  SECTION("extra bytes") {
    Bytes longer = good;
    longer.push_back(0);
    write_bytes(tmp / "imgs", longer);
    CHECK_THAT(error_of([&] { read_idx_images(tmp / "imgs"); }), Contains(tmp / "imgs") && Contains("extra"));
  }
  SECTION("wrong magic (labels file given as images)") {
    write_bytes(tmp / "labels-as-images", idx_labels({1, 2}));
    write_bytes(tmp / "bad-magic", idx_images(2, 3, 3, pixels, 1234));
    CHECK_THAT(error_of([&] { read_idx_images(tmp / "labels-as-images"); }),
               Contains(tmp / "labels-as-images") && Contains("magic") && Contains("2049"));
    CHECK_THAT(error_of([&] { read_idx_images(tmp / "bad-magic"); }),
               Contains(tmp / "bad-magic") && Contains("1234") && Contains("2051"));
    write_bytes(tmp / "images-as-labels", good);
    CHECK_THAT(error_of([&] { read_idx_labels(tmp / "images-as-labels"); }),
               Contains(tmp / "images-as-labels") && Contains("magic"));
  }
  SECTION("label out of range") {
    write_bytes(tmp / "labels", idx_labels({3, 10}));
    CHECK_THAT(error_of([&] { read_idx_labels(tmp / "labels"); }),
               Contains(tmp / "labels") && Contains("label 10") && Contains("example 1"));
  }
  SECTION("truncated labels") {
    Bytes lab = idx_labels({1, 2, 3});
    lab.pop_back();
    write_bytes(tmp / "labels", lab);
    CHECK_THAT(error_of([&] { read_idx_labels(tmp / "labels"); }), Contains(tmp / "labels") && Contains("truncated"));
  }
  SECTION("image count != label count names both files") {
    write_bytes(tmp / "imgs", good);
    write_bytes(tmp / "labels", idx_labels({1, 2, 3}));
    CHECK_THAT(error_of([&] { load_idx_dataset(tmp / "imgs", tmp / "labels", "x"); }),
               Contains(tmp / "imgs") && Contains(tmp / "labels") && Contains("2 images") && Contains("3 labels"));
  }
  SECTION("missing file in a directory") {
    write_bytes(tmp / "d/train-images-idx3-ubyte", good);
    CHECK_THAT(error_of([&] { load_idx_dir(tmp / "d"); }), Contains("train-labels-idx1-ubyte"));
  }
}

// ---------------------------------------------------------------- CIFAR-10

namespace {
// A CIFAR record whose pixel at (c, y, x) is (seed + 3c + 5y + 7x) mod 256.
Bytes cifar_record(uint8_t label, int seed) {
  Bytes r{label};
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) r.push_back(static_cast<uint8_t>((seed + 3 * c + 5 * y + 7 * x) & 0xFF));
  return r;
}
Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
}  // namespace

TEST_CASE("CIFAR-10 batches round-trip exactly, plain and gzip, with class names", "[data][cifar]") {
  TempDir tmp;
  const std::string dir = tmp / "cifar-10-batches-bin";
  for (int b = 1; b <= 5; ++b) {
    Bytes batch = concat({cifar_record(static_cast<uint8_t>(b), 10 * b), cifar_record(9, 10 * b + 1)});
    if (b % 2) write_gz(dir + "/data_batch_" + std::to_string(b) + ".bin.gz", batch);
    else write_bytes(dir + "/data_batch_" + std::to_string(b) + ".bin", batch);
  }
  write_bytes(dir + "/test_batch.bin", cifar_record(0, 99));
  std::string meta = "a  \nb\nc\nd\ne\nf\ng\nh\ni\nj   \n\n";
  write_bytes(dir + "/batches.meta.txt", Bytes(meta.begin(), meta.end()));

  DatasetSplit split = load_cifar10_dir(dir);
  REQUIRE(split.train.n == 10);
  CHECK(split.train.channels == 3);
  CHECK(split.train.height == 32);
  CHECK(split.train.width == 32);
  CHECK(split.train.labels == std::vector<int32_t>{1, 9, 2, 9, 3, 9, 4, 9, 5, 9});
  CHECK(split.train.class_names == std::vector<std::string>{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"});
  // Record 4 = batch 3, first record: seed 30. Green plane (c=1), y=2, x=5.
  const uint8_t* img = split.train.image(4);
  CHECK(img[1 * 1024 + 2 * 32 + 5] == (30 + 3 + 10 + 35));
  Bytes expected = cifar_record(9, 51);  // batch 5, second record
  CHECK(Bytes(split.train.image(9), split.train.image(9) + 3072) == Bytes(expected.begin() + 1, expected.end()));
  CHECK(split.test.n == 1);
  CHECK(split.test.labels[0] == 0);
  split.train.validate();

  // Without batches.meta.txt: the standard names.
  fs::remove(dir + "/batches.meta.txt");
  CHECK(load_cifar10_dir(dir).train.class_names[0] == "airplane");
}

TEST_CASE("CIFAR-10 validation errors name the file", "[data][cifar]") {
  TempDir tmp;
  Bytes two = concat({cifar_record(1, 0), cifar_record(2, 0)});
  SECTION("length not a multiple of 3073") {
    write_gz(tmp / "data_batch_1.bin.gz", Bytes(two.begin(), two.end() - 100));
    CHECK_THAT(error_of([&] { read_cifar10_batch(tmp / "data_batch_1.bin.gz"); }),
               Contains(tmp / "data_batch_1.bin.gz") && Contains("3073"));
  }
  SECTION("label out of range") {
    Bytes bad = two;
    bad[3073] = 10;
    write_bytes(tmp / "test_batch.bin", bad);
    CHECK_THAT(error_of([&] { read_cifar10_batch(tmp / "test_batch.bin"); }),
               Contains(tmp / "test_batch.bin") && Contains("label 10") && Contains("record 1"));
  }
  SECTION("missing batch") {
    write_bytes(tmp / "data_batch_1.bin", two);
    CHECK_THAT(error_of([&] { load_cifar10_dir(tmp.path.string()); }), Contains("data_batch_2.bin"));
  }
}

// ---------------------------------------------------------------- text

TEST_CASE("text corpus: vocabulary, encode/decode, split, windows", "[data][text]") {
  TempDir tmp;
  const std::string text = "hello world\nh\xC3\xA9 \xE2\x82\xAC!";  // "hé €!": 2- and 3-byte characters
  write_bytes(tmp / "t.txt", Bytes(text.begin(), text.end()));
  TextCorpus corpus = TextCorpus::from_file(tmp / "t.txt", 0.25);
  // Distinct: '\n' ' ' '!' d e h l o r w é €  -> 12, sorted by code point.
  REQUIRE(corpus.vocab_size() == 12);
  CHECK(corpus.vocab().char_of(0) == U'\n');
  CHECK(corpus.vocab().char_of(1) == U' ');
  CHECK(corpus.vocab().char_of(10) == U'\u00E9');
  CHECK(corpus.vocab().char_of(11) == U'\u20AC');
  const int64_t n = 17;  // characters, not bytes
  CHECK(corpus.num_chars() == n);
  CHECK(corpus.val_ids().size() == 4);  // floor(0.25 * 17)
  CHECK(corpus.train_ids().size() == 13);

  std::vector<int32_t> all = corpus.train_ids();
  all.insert(all.end(), corpus.val_ids().begin(), corpus.val_ids().end());
  CHECK(corpus.decode(all) == text);
  CHECK(corpus.encode(text) == all);
  CHECK_THAT(error_of([&] { corpus.encode("xyz"); }), Contains("not in the"));
  CHECK_THAT(error_of([&] { corpus.decode({12}); }), Contains("id 12"));

  // Default split: last 10%.
  TextCorpus dflt = TextCorpus::from_string(std::string(1000, 'a') + "b", "mem");
  CHECK(dflt.train_ids().size() == 901);
  CHECK(dflt.val_ids().size() == 100);

  nl::Generator g1(5), g2(5);
  TextBatch b1 = corpus.sample_batch(TextCorpus::Split::Train, 4, 6, g1);
  TextBatch b2 = corpus.sample_batch(TextCorpus::Split::Train, 4, 6, g2);
  CHECK(b1.inputs == b2.inputs);
  REQUIRE(b1.inputs.size() == 24);
  const auto& tr = corpus.train_ids();
  for (int64_t b = 0; b < 4; ++b) {
    // The window is a contiguous piece of the training text and targets are shifted by one.
    auto it = std::search(tr.begin(), tr.end(), b1.inputs.begin() + b * 6, b1.inputs.begin() + b * 6 + 6);
    REQUIRE(it != tr.end());
    CHECK(std::equal(b1.targets.begin() + b * 6, b1.targets.begin() + b * 6 + 6, it + 1));
  }
  CHECK_THAT(error_of([&] { corpus.sample_batch(TextCorpus::Split::Val, 1, 4, g1); }), Contains("validation"));

  // gzip text works too.
  write_gz(tmp / "t.txt.gz", Bytes(text.begin(), text.end()));
  CHECK(TextCorpus::from_file(tmp / "t.txt.gz").num_chars() == n);
}

TEST_CASE("text corpus rejects empty files and invalid UTF-8, naming the file", "[data][text]") {
  TempDir tmp;
  write_bytes(tmp / "empty.txt", {});
  CHECK_THAT(error_of([&] { TextCorpus::from_file(tmp / "empty.txt"); }), Contains(tmp / "empty.txt") && Contains("empty"));
  const std::vector<std::string> bad = {
      "ab\x80",          // continuation byte without lead
      "ab\xC3",          // cut-off sequence
      "a\xC3(b",         // lead followed by a non-continuation
      "\xC0\xAF",        // overlong '/'
      "\xED\xA0\x80",    // UTF-16 surrogate
      "\xF5\x80\x80\x80",  // > U+10FFFF
      "\xFF",
  };
  for (size_t k = 0; k < bad.size(); ++k) {
    const std::string path = tmp / ("bad" + std::to_string(k) + ".txt");
    write_bytes(path, Bytes(bad[k].begin(), bad[k].end()));
    INFO("case " << k);
    CHECK_THAT(error_of([&] { TextCorpus::from_file(path); }), Contains(path) && Contains("invalid UTF-8"));
  }
  const std::string second_line = "ok\nfine\n\xFE";
  write_bytes(tmp / "line.txt", Bytes(second_line.begin(), second_line.end()));
  CHECK_THAT(error_of([&] { TextCorpus::from_file(tmp / "line.txt"); }), Contains("byte 8") && Contains("line 3"));
}

// ---------------------------------------------------------------- image folder

TEST_CASE("image folder loads PNGs into CHW bytes with sorted class labels", "[data][folder]") {
  TempDir tmp;
  // 3 wide, 2 high, RGB; value = 100*c + 10*y + x, and a second image with +1.
  auto rgb = [](int add) {
    Bytes hwc;
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 3; ++x)
        for (int c = 0; c < 3; ++c) hwc.push_back(static_cast<uint8_t>(100 * c + 10 * y + x + add));
    return hwc;
  };
  fs::create_directories(tmp.path / "root/dog");
  fs::create_directories(tmp.path / "root/cat");
  Bytes a = rgb(0), b = rgb(1);
  REQUIRE(stbi_write_png((tmp / "root/dog/1.png").c_str(), 3, 2, 3, a.data(), 3 * 3));
  REQUIRE(stbi_write_png((tmp / "root/cat/x.PNG").c_str(), 3, 2, 3, b.data(), 3 * 3));
  write_bytes(tmp / "root/cat/notes.txt", {'h', 'i'});  // ignored

  ImageDataset ds = load_image_folder(tmp / "root");
  REQUIRE(ds.n == 2);
  CHECK(ds.channels == 3);
  CHECK(ds.height == 2);
  CHECK(ds.width == 3);
  CHECK(ds.class_names == std::vector<std::string>{"cat", "dog"});
  CHECK(ds.labels == std::vector<int32_t>{0, 1});  // cat/x.PNG first, then dog/1.png
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 3; ++x) {
        CHECK(ds.image(0)[c * 6 + y * 3 + x] == 100 * c + 10 * y + x + 1);
        CHECK(ds.image(1)[c * 6 + y * 3 + x] == 100 * c + 10 * y + x);
      }

  SECTION("grayscale folders load with one channel") {
    Bytes g = {0, 50, 100, 150, 200, 250};
    fs::create_directories(tmp.path / "gray/a");
    fs::create_directories(tmp.path / "gray/b");
    REQUIRE(stbi_write_png((tmp / "gray/a/0.png").c_str(), 3, 2, 1, g.data(), 3));
    REQUIRE(stbi_write_png((tmp / "gray/b/0.png").c_str(), 3, 2, 1, g.data(), 3));
    ImageDataset gray = load_image_folder(tmp / "gray");
    CHECK(gray.channels == 1);
    CHECK(Bytes(gray.image(1), gray.image(1) + 6) == g);
  }
  SECTION("an image of a different size is named in the error") {
    Bytes big(4 * 4 * 3, 7);
    REQUIRE(stbi_write_png((tmp / "root/dog/2.png").c_str(), 4, 4, 3, big.data(), 4 * 3));
    CHECK_THAT(error_of([&] { load_image_folder(tmp / "root"); }),
               Contains(tmp / "root/dog/2.png") && Contains("4x4") && Contains("same size"));
  }
  SECTION("a non-image with an image extension is named in the error") {
    write_bytes(tmp / "root/dog/broken.png", {1, 2, 3, 4});
    CHECK_THAT(error_of([&] { load_image_folder(tmp / "root"); }), Contains(tmp / "root/dog/broken.png"));
  }
  SECTION("an empty class folder is an error") {
    fs::create_directories(tmp.path / "root/emu");
    CHECK_THAT(error_of([&] { load_image_folder(tmp / "root"); }), Contains("emu"));
  }
}

// ---------------------------------------------------------------- normalization

TEST_CASE("standardization gives per-channel mean 0 / std 1 on the training set", "[data][norm]") {
  // Three channels with very different statistics.
  ImageDataset ds = synthetic(200, 3, 8, 8);
  for (int64_t i = 0; i < ds.n; ++i) {
    uint8_t* img = ds.pixels.data() + i * ds.image_size();
    for (int64_t k = 0; k < 64; ++k) {
      img[64 + k] = static_cast<uint8_t>(img[64 + k] / 8);          // G: 0..31
      img[128 + k] = static_cast<uint8_t>(200 + img[128 + k] % 50);  // B: 200..249
    }
  }
  Normalization norm = Normalization::standardize(ds);
  nl::Tensor x = to_tensor(ds, norm);
  REQUIRE(x.shape() == nl::Shape{200, 3, 8, 8});
  const float* p = x.data();
  for (int c = 0; c < 3; ++c) {
    double s = 0, s2 = 0, count = 0;
    for (int64_t i = 0; i < 200; ++i)
      for (int k = 0; k < 64; ++k) {
        double v = p[(i * 3 + c) * 64 + k];
        s += v;
        s2 += v * v;
        ++count;
      }
    double mean = s / count, std = std::sqrt(s2 / count - mean * mean);
    INFO("channel " << c);
    CHECK(std::abs(mean) < 1e-4);
    CHECK(std::abs(std - 1.0) < 1e-4);
  }
  CHECK(norm.mean[1] < norm.mean[0]);
  CHECK(norm.mean[2] > norm.mean[0]);

  // Given statistics: (p/255 - 0.5) / 0.25.
  Normalization given = Normalization::standardize({0.5f, 0.5f, 0.5f}, {0.25f, 0.25f, 0.25f});
  nl::Tensor g = to_tensor(ds, given, 0, 1);
  CHECK(g.data()[0] == Approx((ds.pixels[0] / 255.0 - 0.5) / 0.25).epsilon(1e-5));

  // Min-max: exactly 0 and 1 at the training set's extremes, per channel.
  nl::Tensor mm = to_tensor(ds, Normalization::min_max(ds));
  for (int c = 0; c < 3; ++c) {
    float lo = 1e9f, hi = -1e9f;
    for (int64_t i = 0; i < 200; ++i)
      for (int k = 0; k < 64; ++k) {
        lo = std::min(lo, mm.data()[(i * 3 + c) * 64 + k]);
        hi = std::max(hi, mm.data()[(i * 3 + c) * 64 + k]);
      }
    CHECK(lo == Approx(0.0f).margin(1e-6));
    CHECK(hi == Approx(1.0f).epsilon(1e-6));
  }
  nl::Tensor unit = to_tensor(ds, Normalization::unit_range(3), 5, 6);
  CHECK(unit.data()[0] == Approx(5 / 255.0f));  // the first pixel of example i is i
  CHECK_THAT(error_of([&] { make_normalization("bogus", ds); }), Contains("bogus"));
}

// ---------------------------------------------------------------- augmentation

TEST_CASE("augmentation is a crop of the zero-padded image plus an optional flip", "[data][augment]") {
  const int64_t C = 3, H = 32, W = 32;
  Bytes src(C * H * W);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) src[(c * H + y) * W + x] = static_cast<uint8_t>(1 + (c * 80 + y * 7 + x) % 250);
  Bytes dst(src.size());
  auto at = [&](const Bytes& img, int64_t c, int64_t y, int64_t x) { return img[(c * H + y) * W + x]; };

  shift_flip(src.data(), dst.data(), C, H, W, 0, 0, false);
  CHECK(dst == src);

  // Shift by (dy, dx) = (2, -3), no flip: out(y, x) = src(y + 2, x - 3); zero border.
  shift_flip(src.data(), dst.data(), C, H, W, 2, -3, false);
  CHECK(at(dst, 1, 10, 10) == at(src, 1, 12, 7));
  CHECK(at(dst, 2, 0, 3) == at(src, 2, 2, 0));
  CHECK(at(dst, 0, 0, 2) == 0);    // x - 3 < 0: padding
  CHECK(at(dst, 0, 30, 10) == 0);  // y + 2 = 32: padding
  CHECK(at(dst, 0, 29, 31) == at(src, 0, 31, 28));

  // Flip only: out(y, x) = src(y, W-1-x).
  shift_flip(src.data(), dst.data(), C, H, W, 0, 0, true);
  CHECK(at(dst, 2, 5, 0) == at(src, 2, 5, 31));
  CHECK(at(dst, 2, 5, 31) == at(src, 2, 5, 0));

  // Shift and flip: out(y, x) = src(y + dy, W-1-x + dx).
  shift_flip(src.data(), dst.data(), C, H, W, -4, 4, true);
  CHECK(at(dst, 1, 4, 10) == at(src, 1, 0, 25));
  CHECK(at(dst, 1, 3, 10) == 0);
  CHECK(at(dst, 1, 10, 3) == 0);  // W-1-3+4 = 32: padding
  CHECK(at(dst, 1, 10, 4) == at(src, 1, 6, 31));

  // Random draws: offsets in [-4, 4], flips about half the time, output matches the draw.
  nl::Generator gen(3);
  int flips = 0;
  std::set<int64_t> seen_dx;
  Bytes expect(src.size());
  for (int t = 0; t < 400; ++t) {
    AugmentDraw d = random_augment(src.data(), dst.data(), C, H, W, Augmentation::cifar(), gen);
    REQUIRE(d.dy >= -4);
    REQUIRE(d.dy <= 4);
    REQUIRE(d.dx >= -4);
    REQUIRE(d.dx <= 4);
    flips += d.flip;
    seen_dx.insert(d.dx);
    shift_flip(src.data(), expect.data(), C, H, W, d.dy, d.dx, d.flip);
    REQUIRE(dst == expect);
  }
  CHECK(flips > 150);
  CHECK(flips < 250);
  CHECK(seen_dx.size() == 9);
}

// ---------------------------------------------------------------- loader

TEST_CASE("DataLoader covers every example once per epoch and is deterministic", "[data][loader]") {
  ImageDataset ds = synthetic(10, 1, 2, 2);
  LoaderOptions opt;
  opt.batch_size = 3;
  opt.seed = 42;

  auto run_epoch = [](DataLoader& loader, int64_t epoch) {
    loader.start_epoch(epoch);
    std::vector<int64_t> seen;
    std::vector<int64_t> sizes;
    Batch b;
    while (loader.next(b)) {
      sizes.push_back(b.x.size(0));
      for (size_t k = 0; k < b.indices.size(); ++k) {
        // Labels and pixels travel with their example.
        CHECK(b.y[k] == b.indices[k] % 10);
        CHECK(b.x.data()[k * 4] == Approx(static_cast<float>(b.indices[k]) / 255.0f));
      }
      seen.insert(seen.end(), b.indices.begin(), b.indices.end());
    }
    return std::make_pair(seen, sizes);
  };

  DataLoader loader(ds, opt);
  CHECK(loader.batches_per_epoch() == 4);
  auto [order0, sizes0] = run_epoch(loader, 0);
  CHECK(sizes0 == std::vector<int64_t>{3, 3, 3, 1});
  std::vector<int64_t> sorted = order0;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(order0 == loader.epoch_order(0));

  auto [order1, sizes1] = run_epoch(loader, 1);
  CHECK(order1 != order0);  // a new permutation every epoch
  std::sort(order1.begin(), order1.end());
  CHECK(order1 == sorted);

  // Same seed => same order; in a second loader, with or without the background thread.
  LoaderOptions sync = opt;
  sync.background = false;
  DataLoader again(ds, sync);
  CHECK(run_epoch(again, 0).first == order0);
  LoaderOptions other = opt;
  other.seed = 43;
  DataLoader different(ds, other);
  CHECK(run_epoch(different, 0).first != order0);

  // drop_last: 3 full batches, the leftover example is skipped.
  LoaderOptions drop = opt;
  drop.drop_last = true;
  DataLoader dl(ds, drop);
  CHECK(dl.batches_per_epoch() == 3);
  auto [order_d, sizes_d] = run_epoch(dl, 0);
  CHECK(sizes_d == std::vector<int64_t>{3, 3, 3});
  CHECK(std::set<int64_t>(order_d.begin(), order_d.end()).size() == 9);

  // No shuffle: identity order.
  LoaderOptions seq = opt;
  seq.shuffle = false;
  DataLoader sl(ds, seq);
  CHECK(run_epoch(sl, 5).first == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});

  CHECK_THAT(error_of([&] {
               LoaderOptions zero = opt;
               zero.batch_size = 0;
               DataLoader bad(ds, zero);
             }),
             Contains("batch_size"));
}

TEST_CASE("DataLoader resume at (epoch, batch) reproduces the batches, augmentation included", "[data][loader]") {
  ImageDataset ds = synthetic(50, 3, 8, 8);
  LoaderOptions opt;
  opt.batch_size = 8;
  opt.seed = 9;
  opt.augment = Augmentation{2, true};
  opt.normalization = Normalization::standardize(ds);

  std::vector<std::vector<float>> full;
  {
    DataLoader loader(ds, opt);
    for (int64_t e = 0; e < 2; ++e) {
      loader.start_epoch(e);
      Batch b;
      while (loader.next(b)) full.push_back(b.x.to_vector());
    }
  }
  REQUIRE(full.size() == 14);
  // A fresh loader started at epoch 1, batch 3 (as after a checkpoint) continues identically.
  DataLoader resumed(ds, opt);
  resumed.start_epoch(1, 3);
  CHECK(resumed.batch_index() == 3);
  Batch b;
  size_t k = 7 + 3;
  while (resumed.next(b)) {
    CHECK(b.epoch == 1);
    CHECK(b.x.to_vector() == full[k]);
    ++k;
  }
  CHECK(k == 14);
  // Restarting mid-epoch discards the batch prepared in advance.
  resumed.start_epoch(0);
  REQUIRE(resumed.next(b));
  CHECK(b.x.to_vector() == full[0]);
  resumed.start_epoch(0, 6);
  REQUIRE(resumed.next(b));
  CHECK(b.x.to_vector() == full[6]);
  CHECK_FALSE(resumed.next(b));

  // Augmented batches differ from the plain images but are crops/flips of them.
  LoaderOptions plain = opt;
  plain.augment = Augmentation::none();
  DataLoader p(ds, plain);
  Batch pb;
  REQUIRE(p.next(pb));
  CHECK(pb.x.to_vector() != full[0]);
}

TEST_CASE("DataLoader parts: K loaders together yield one loader's batches, example for example", "[data][loader]") {
  // Data parallelism: rank r of K loads part r of every batch of K*b examples. Augmentation
  // is drawn per example (from its position in the epoch order), so it is the same wherever
  // the example lands. 50 examples, batches of 12 (the last one of 2 kept: drop_last off).
  ImageDataset ds = synthetic(50, 3, 8, 8);
  LoaderOptions whole;
  whole.batch_size = 12;
  whole.seed = 5;
  whole.augment = Augmentation{2, true};
  whole.normalization = Normalization::standardize(ds);
  for (const int64_t K : {2, 3}) {
    INFO("K = " << K);
    std::vector<std::unique_ptr<DataLoader>> parts;
    for (int64_t r = 0; r < K; ++r) {
      LoaderOptions o = whole;
      o.part_index = r;
      o.part_count = K;
      parts.push_back(std::make_unique<DataLoader>(ds, o));
    }
    DataLoader one(ds, whole);
    for (int64_t e = 0; e < 2; ++e) {
      one.start_epoch(e);
      for (auto& p : parts) p->start_epoch(e);
      Batch b;
      int64_t batches = 0;
      while (one.next(b)) {
        ++batches;
        if (b.indices.size() < static_cast<size_t>(K)) {  // the last batch of 2 cannot feed 3 parts
          Batch unused;
          CHECK_THROWS_WITH(parts[0]->next(unused), Contains("too few to give one to each of 3 parts"));
          break;
        }
        std::vector<float> joined_x;
        std::vector<int32_t> joined_y;
        std::vector<int64_t> joined_i;
        for (auto& p : parts) {
          Batch pb;
          REQUIRE(p->next(pb));
          CHECK(pb.batch_examples == static_cast<int64_t>(b.indices.size()));
          const auto x = pb.x.to_vector();
          joined_x.insert(joined_x.end(), x.begin(), x.end());
          joined_y.insert(joined_y.end(), pb.y.begin(), pb.y.end());
          joined_i.insert(joined_i.end(), pb.indices.begin(), pb.indices.end());
        }
        CHECK(joined_i == b.indices);
        CHECK(joined_y == b.y);
        CHECK(joined_x == b.x.to_vector());  // bit for bit, augmentation included
      }
      CHECK(batches == 5);
    }
  }
  LoaderOptions bad = whole;
  bad.part_index = 2;
  bad.part_count = 2;
  CHECK_THROWS_WITH(DataLoader(ds, bad), Contains("part 2 of 2 does not exist"));
}

// ---------------------------------------------------------------- registry

TEST_CASE("dataset lookup by name", "[data][registry]") {
  TempDir tmp;
  CHECK_THAT(error_of([] { parse_dataset_name("imagenet"); }), Contains("imagenet") && Contains("mnist"));
  CHECK(is_text_dataset("text:foo.txt"));
  CHECK_FALSE(is_text_dataset("cifar10"));
  CHECK(resolve_data_dir("/x") == "/x");

  // Missing: the error lists where it looked and how to get the data.
  std::string msg = error_of([&] { load_image_dataset("mnist", tmp.path.string()); });
  CHECK_THAT(msg, Contains((tmp.path / "mnist").string()) && Contains("download_data.sh mnist") &&
                      Contains("--data-dir"));
  msg = error_of([&] { locate_dataset("fashion-mnist", tmp.path.string()); });
  if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
    CHECK_THAT(msg, Contains((tmp.path / "fashion-mnist").string()) &&
                        Contains("/usr/share/datasets/fashion-mnist") && Contains("apt-get install dataset-fashion-mnist"));
  }
  CHECK_THAT(error_of([&] { load_image_dataset("cifar10", tmp.path.string()); }),
             Contains("cifar-10-batches-bin") && Contains("download_data.sh cifar10"));

  // Found through NORMLAB_DATA_DIR.
  write_gz(tmp / "mnist/train-images-idx3-ubyte.gz", idx_images(1, 2, 2, {1, 2, 3, 4}));
  write_gz(tmp / "mnist/train-labels-idx1-ubyte.gz", idx_labels({3}));
  write_gz(tmp / "mnist/t10k-images-idx3-ubyte.gz", idx_images(1, 2, 2, {5, 6, 7, 8}));
  write_gz(tmp / "mnist/t10k-labels-idx1-ubyte.gz", idx_labels({4}));
  const char* old = std::getenv("NORMLAB_DATA_DIR");
  std::string saved = old ? old : "";
  setenv("NORMLAB_DATA_DIR", tmp.path.c_str(), 1);
  DatasetSplit m = load_image_dataset("mnist");
  if (old) setenv("NORMLAB_DATA_DIR", saved.c_str(), 1);
  else unsetenv("NORMLAB_DATA_DIR");
  CHECK(m.test.pixels == Bytes{5, 6, 7, 8});

  // text:PATH relative to the data dir.
  write_bytes(tmp / "corpus.txt", {'a', 'b', 'a', 'c'});
  CHECK(load_text_dataset("text:corpus.txt", tmp.path.string()).vocab_size() == 3);
  CHECK_THAT(error_of([&] { load_text_dataset("text:none.txt", tmp.path.string()); }), Contains("none.txt"));
  CHECK_THAT(error_of([&] { load_text_dataset("mnist", tmp.path.string()); }), Contains("not a text"));

  // folder:PATH without train/test: a seeded holdout split.
  fs::create_directories(tmp.path / "imgs/a");
  fs::create_directories(tmp.path / "imgs/b");
  Bytes px(4, 9);
  for (int i = 0; i < 10; ++i) {
    REQUIRE(stbi_write_png((tmp / ("imgs/a/" + std::to_string(i) + ".png")).c_str(), 2, 2, 1, px.data(), 2));
    REQUIRE(stbi_write_png((tmp / ("imgs/b/" + std::to_string(i) + ".png")).c_str(), 2, 2, 1, px.data(), 2));
  }
  DatasetSplit f = load_image_dataset("folder:" + (tmp / "imgs"));
  CHECK(f.train.n == 18);
  CHECK(f.test.n == 2);
  CHECK(f.train.class_names == std::vector<std::string>{"a", "b"});
}

// ---------------------------------------------------------------- real data (skipped if absent)

namespace {
// The real datasets: $NORMLAB_DATA_DIR, else ../shared/data next to the repository (where
// the README's commands find them).
std::string real_data_dir() {
  if (const char* d = std::getenv("NORMLAB_DATA_DIR"); d && *d) return d;
  return std::string(NORMLAB_FIXTURE_DIR) + "/../../../shared/data";  // <repo>/tests/fixtures/../../..
}
const std::string kSharedData = real_data_dir();
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
double mean_pixel(const ImageDataset& ds) {
  double s = 0;
  for (uint8_t p : ds.pixels) s += p;
  return s / static_cast<double>(ds.pixels.size());
}
}  // namespace

TEST_CASE("real MNIST loads with the known counts and mean", "[data][real]") {
  const std::string dir = std::string(kSharedData) + "/mnist";
  if (find_plain_or_gz(dir, "train-images-idx3-ubyte").empty()) {
    WARN("SKIPPED: no MNIST in " << dir);
    return;
  }
  auto t0 = std::chrono::steady_clock::now();
  DatasetSplit m = load_idx_dir(dir);
  WARN("MNIST (4 .gz files) loaded in " << seconds_since(t0) << " s");
  CHECK(m.train.n == 60000);
  CHECK(m.test.n == 10000);
  CHECK(m.train.height == 28);
  CHECK(m.train.width == 28);
  CHECK(mean_pixel(m.train) / 255.0 == Approx(33.318 / 255.0).margin(1e-5));
  CHECK(mean_pixel(m.test) == Approx(33.791).margin(1e-3));
  ChannelStats st = channel_stats(m.train);
  CHECK(st.mean[0] == Approx(0.1307).margin(1e-4));
  CHECK(st.std[0] == Approx(0.3081).margin(1e-4));
  std::vector<int> per_class(10);
  for (int32_t y : m.train.labels) ++per_class[y];
  CHECK(*std::min_element(per_class.begin(), per_class.end()) == 5421);
  CHECK(*std::max_element(per_class.begin(), per_class.end()) == 6742);
}

TEST_CASE("real CIFAR-10 loads with the known first records and statistics", "[data][real]") {
  const std::string dir = std::string(kSharedData) + "/cifar-10-batches-bin";
  if (find_plain_or_gz(dir, "data_batch_1.bin").empty()) {
    WARN("SKIPPED: no CIFAR-10 in " << dir);
    return;
  }
  auto t0 = std::chrono::steady_clock::now();
  DatasetSplit c = load_cifar10_dir(dir);
  WARN("CIFAR-10 (6 .bin.gz files) loaded in " << seconds_since(t0) << " s");
  REQUIRE(c.train.n == 50000);
  REQUIRE(c.test.n == 10000);
  CHECK(c.train.class_names[6] == "frog");
  CHECK(std::vector<int32_t>(c.train.labels.begin(), c.train.labels.begin() + 10) ==
        std::vector<int32_t>{6, 9, 9, 4, 1, 1, 2, 7, 8, 3});
  CHECK(std::vector<int32_t>(c.test.labels.begin(), c.test.labels.begin() + 5) ==
        std::vector<int32_t>{3, 8, 8, 0, 6});
  const uint8_t* frog = c.train.image(0);
  CHECK(frog[0] == 59);     // R(0,0)
  CHECK(frog[1024] == 62);  // G(0,0)
  CHECK(frog[2048] == 63);  // B(0,0)
  CHECK(c.test.image(0)[0] == 158);
  t0 = std::chrono::steady_clock::now();
  Normalization norm = Normalization::standardize(c.train);
  WARN("CIFAR-10 channel statistics in " << seconds_since(t0) << " s: " << norm.describe());
  CHECK(norm.mean[0] == Approx(0.4914).margin(1e-4));
  CHECK(norm.mean[2] == Approx(0.4465).margin(1e-4));
  CHECK(norm.std[1] == Approx(0.2435).margin(1e-4));

  // One augmented epoch's worth of batches through the loader: time and sanity.
  LoaderOptions opt;
  opt.batch_size = 128;
  opt.augment = Augmentation::cifar();
  opt.normalization = norm;
  DataLoader loader(c.train, opt);
  t0 = std::chrono::steady_clock::now();
  Batch b;
  int64_t count = 0;
  while (loader.next(b)) count += b.x.size(0);
  WARN("CIFAR-10 augmented epoch (391 batches of 128) in " << seconds_since(t0) << " s");
  CHECK(count == 50000);
}

TEST_CASE("real tiny Shakespeare and Debian Fashion-MNIST (when present)", "[data][real]") {
  const std::string text = std::string(kSharedData) + "/tinyshakespeare/input.txt";
  if (fs::exists(text)) {
    TextCorpus corpus = load_text_dataset("tinyshakespeare", kSharedData);
    CHECK(corpus.num_chars() == 1115394);
    CHECK(corpus.vocab_size() == 65);
    CHECK(corpus.decode(std::vector<int32_t>(corpus.train_ids().begin(), corpus.train_ids().begin() + 14)) ==
          "First Citizen:");
  } else {
    WARN("SKIPPED: no " << text);
  }
  if (fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
    TempDir empty;  // nothing in the data dir: falls back to the Debian package
    DatasetSplit f = load_image_dataset("fashion-mnist", empty.path.string());
    CHECK(f.train.n == 60000);
    CHECK(f.test.n == 10000);
    CHECK(f.train.class_names[9] == "Ankle boot");
  } else {
    WARN("SKIPPED: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)");
  }
}
