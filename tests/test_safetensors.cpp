// Tests of core/safetensors: round trips, the on-disk layout checked by an independent
// minimal parser, rejection of every kind of corrupt file, and the crash-safe write.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "core/safetensors.hpp"

using namespace nl;
namespace fs = std::filesystem;
using Catch::Contains;

namespace {

// A fresh empty directory per test, removed afterwards.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("normlab_st_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(reinterpret_cast<uintptr_t>(this)));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path)) names.push_back(e.path().filename().string());
    return names;
  }
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A file assembled by hand: header text (unvalidated) followed by `data_bytes` zero bytes.
std::string raw_file(const std::string& header, size_t data_bytes) {
  return le64(header.size()) + header + std::string(data_bytes, '\0');
}

}  // namespace

TEST_CASE("safetensors round trip keeps names, order, shapes, values and metadata", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("rt.safetensors");
  Tensor a = Tensor::from_vector({2, 3}, {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e30f});
  Tensor scalar = Tensor::scalar(-7.5f);             // 0-d: shape [], one element
  Tensor empty = Tensor::zeros({0, 4});              // no elements, zero bytes
  Tensor base = Tensor::from_vector({2, 3}, {0, 1, 2, 3, 4, 5});
  Tensor transposed = base.transpose(0, 1);          // non-contiguous: stored row-major
  REQUIRE(!transposed.is_contiguous());
  std::map<std::string, std::string> meta{{"format", "pt"}, {"case0", R"({"dim": -1})"}};
  save_safetensors(path, {{"z.a", a}, {"scalar", scalar}, {"empty", empty}, {"t", transposed}}, meta);

  TensorFile f = load_safetensors(path);
  REQUIRE(f.path == path);
  REQUIRE(f.tensors.size() == 4);
  // Order is data-section order, which is the order given to save.
  REQUIRE(f.tensors[0].first == "z.a");
  REQUIRE(f.tensors[1].first == "scalar");
  REQUIRE(f.tensors[2].first == "empty");
  REQUIRE(f.tensors[3].first == "t");
  REQUIRE(f.get("z.a").shape() == Shape{2, 3});
  REQUIRE(f.get("z.a").to_vector() == a.to_vector());
  REQUIRE(std::signbit(f.get("z.a").to_vector()[4]));  // -0.0 survives bit for bit
  REQUIRE(f.get("scalar").shape() == Shape{});
  REQUIRE(f.get("scalar").item() == -7.5f);
  REQUIRE(f.get("empty").shape() == Shape{0, 4});
  REQUIRE(f.get("t").shape() == Shape{3, 2});
  REQUIRE(f.get("t").to_vector() == std::vector<float>{0, 3, 1, 4, 2, 5});
  REQUIRE(f.metadata == meta);
  REQUIRE(f.meta("case0") == R"({"dim": -1})");
  REQUIRE(f.contains("scalar"));
  REQUIRE(!f.contains("nope"));
  REQUIRE_THROWS_WITH(f.get("nope"), Contains("no tensor named 'nope'") && Contains(path) && Contains("z.a"));
  REQUIRE_THROWS_WITH(f.meta("nope"), Contains("no metadata key 'nope'"));

  // An empty file list is legal too.
  save_safetensors(path, {});
  REQUIRE(load_safetensors(path).tensors.empty());
}

TEST_CASE("safetensors files follow the spec byte for byte (independent parser)", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("layout.safetensors");
  Tensor a = Tensor::from_vector({3}, {1, 2, 3});
  Tensor b = Tensor::from_vector({2, 2}, {-1, -2, -3, -4});
  save_safetensors(path, {{"b", b}, {"a", a}}, {{"k", "v"}});

  const std::string bytes = read_bytes(path);
  REQUIRE(bytes.size() >= 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  REQUIRE((8 + n) % 8 == 0);  // data section 8-byte aligned (spaces pad the header)
  REQUIRE(bytes.size() == 8 + n + (3 + 4) * sizeof(float));
  const std::string header_text = bytes.substr(8, n);
  REQUIRE(header_text.front() == '{');
  REQUIRE(header_text.find_last_not_of(' ') == header_text.find_last_of('}'));
  auto header = nlohmann::json::parse(header_text);
  REQUIRE(header["__metadata__"] == nlohmann::json{{"k", "v"}});
  REQUIRE(header["b"]["dtype"] == "F32");
  REQUIRE(header["b"]["shape"] == nlohmann::json{2, 2});
  REQUIRE(header["b"]["data_offsets"] == nlohmann::json{0, 16});
  REQUIRE(header["a"]["shape"] == nlohmann::json{3});
  REQUIRE(header["a"]["data_offsets"] == nlohmann::json{16, 28});
  float raw[3];
  std::memcpy(raw, bytes.data() + 8 + n + 16, sizeof(raw));
  REQUIRE(raw[0] == 1.0f);
  REQUIRE(raw[2] == 3.0f);
}

TEST_CASE("safetensors rejects corrupt files with a message naming the file and the problem", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  auto load_with = [&](const std::string& bytes) {
    write_bytes(path, bytes);
    return load_safetensors(path);
  };
  const std::string ok_entry = R"("x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]})";

  // Sanity: the hand-built valid file loads, so each failure below is due to its one defect.
  REQUIRE(load_with(raw_file("{" + ok_entry + "}", 8)).get("x").shape() == Shape{2});

  SECTION("missing file") {
    REQUIRE_THROWS_WITH(load_safetensors(dir.file("absent.safetensors")),
                        Contains("absent.safetensors") && Contains("cannot open"));
  }
  SECTION("truncated before the header length") {
    REQUIRE_THROWS_WITH(load_with(std::string("\x05\x00\x00", 3)), Contains(path) && Contains("truncated"));
  }
  SECTION("header length larger than the file") {
    REQUIRE_THROWS_WITH(load_with(le64(1000) + "{}"), Contains(path) && Contains("header length 1000 is larger"));
  }
  SECTION("absurd header length") {
    REQUIRE_THROWS_WITH(load_with(le64(UINT64_MAX) + "{}"), Contains("header length"));
  }
  SECTION("truncated data section") {
    REQUIRE_THROWS_WITH(load_with(raw_file("{" + ok_entry + "}", 5)), Contains(path) && Contains("out of range"));
  }
  SECTION("bad JSON") {
    REQUIRE_THROWS_WITH(load_with(raw_file("{\"x\": {", 0)), Contains(path) && Contains("not valid JSON"));
  }
  SECTION("header is not an object") {
    REQUIRE_THROWS_WITH(load_with(raw_file("[1, 2]", 0)), Contains("must be a JSON object"));
  }
  SECTION("wrong dtype") {
    REQUIRE_THROWS_WITH(load_with(raw_file(R"({"x": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}})", 8)),
                        Contains(path) && Contains("tensor 'x'") && Contains("dtype I64 is not supported"));
  }
  SECTION("missing field") {
    REQUIRE_THROWS_WITH(load_with(raw_file(R"({"x": {"dtype": "F32", "shape": [2]}})", 8)),
                        Contains("missing field \"data_offsets\""));
  }
  SECTION("negative dimension") {
    REQUIRE_THROWS_WITH(load_with(raw_file(R"({"x": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", 8)),
                        Contains("non-negative integer"));
  }
  SECTION("offsets out of range") {
    REQUIRE_THROWS_WITH(load_with(raw_file(R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})", 8)),
                        Contains(path) && Contains("out of range"));
    REQUIRE_THROWS_WITH(load_with(raw_file(R"({"x": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}})", 8)),
                        Contains("out of range"));
  }
  SECTION("size mismatch between shape and offsets") {
    REQUIRE_THROWS_WITH(load_with(raw_file(R"({"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8)),
                        Contains(path) && Contains("needs 12 bytes") && Contains("span 8"));
  }
  SECTION("overlapping offsets") {
    const std::string h = R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                          R"( "y": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})";
    REQUIRE_THROWS_WITH(load_with(raw_file(h, 12)), Contains(path) && Contains("overlap"));
  }
  SECTION("gap and trailing bytes") {
    const std::string gap = R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})";
    REQUIRE_THROWS_WITH(load_with(raw_file(gap, 8)), Contains("gap in the data section"));
    REQUIRE_THROWS_WITH(load_with(raw_file("{" + ok_entry + "}", 12)), Contains("trailing garbage"));
  }
  SECTION("duplicate names") {
    REQUIRE_THROWS_WITH(load_with(raw_file("{" + ok_entry + ", " + ok_entry + "}", 8)),
                        Contains(path) && Contains("duplicate tensor name 'x'"));
  }
  SECTION("metadata values must be strings") {
    REQUIRE_THROWS_WITH(load_with(raw_file(R"({"__metadata__": {"k": 1}})", 0)), Contains("must be a string"));
  }
}

TEST_CASE("safetensors survives random corruption: every bad file is an nl::Error, never a crash", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("fuzz.safetensors");
  save_safetensors(path, {{"a", Tensor::ones({3, 2})}, {"b", Tensor::scalar(1)}, {"c", Tensor::zeros({0})}},
                   {{"k", "v"}});
  const std::string good = read_bytes(path);
  uint64_t state = 12345;  // a tiny LCG: reproducible, no dependence on <random>
  auto next = [&](uint64_t n) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % n;
  };
  int rejected = 0, loaded = 0;
  for (int trial = 0; trial < 600; ++trial) {
    std::string bytes = good;
    switch (trial % 3) {
      case 0:  // flip a few bytes anywhere (header length, JSON, data)
        for (int k = 0; k < 3; ++k) bytes[next(bytes.size())] = static_cast<char>(next(256));
        break;
      case 1:  // truncate
        bytes.resize(next(bytes.size()));
        break;
      case 2:  // replace one header character with a JSON-significant one
        bytes[8 + next(bytes.size() - 8 - 28)] = "{}[]\",:0-9 e"[next(12)];
        break;
    }
    write_bytes(path, bytes);
    try {
      load_safetensors(path);
      ++loaded;  // e.g. a flipped data byte: still a valid file
    } catch (const Error& e) {
      ++rejected;
      REQUIRE(std::string(e.what()).find(path) != std::string::npos);
    }
    // Any other exception type escapes and fails the test.
  }
  REQUIRE(rejected > 300);  // most corruptions are structural
  REQUIRE(loaded + rejected == 600);
}

TEST_CASE("safetensors writes via a temporary file and never clobbers on failure", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  Tensor a = Tensor::from_vector({2}, {1, 2});
  save_safetensors(path, {{"a", a}});
  REQUIRE(dir.entries() == std::vector<std::string>{"ckpt.safetensors"});  // no tmp left behind
  const std::string old_bytes = read_bytes(path);

  SECTION("an undefined tensor is rejected before anything is written") {
    REQUIRE_THROWS_WITH(save_safetensors(path, {{"a", a}, {"b", Tensor()}}), Contains("'b' is undefined"));
  }
  SECTION("bad names are rejected") {
    REQUIRE_THROWS_WITH(save_safetensors(path, {{"a", a}, {"a", a}}), Contains("duplicate tensor name 'a'"));
    REQUIRE_THROWS_WITH(save_safetensors(path, {{"__metadata__", a}}), Contains("reserved"));
    REQUIRE_THROWS_WITH(save_safetensors(path, {{"", a}}), Contains("empty name"));
  }
  SECTION("a failure after writing (rename onto a directory) removes the tmp file") {
    // The temp file is fully written, then rename() fails because the target is a
    // non-empty directory: the error path must clean up.
    const std::string target = dir.file("is_a_dir");
    fs::create_directories(fs::path(target) / "child");
    REQUIRE_THROWS_WITH(save_safetensors(target, {{"a", Tensor::ones({1000})}}),
                        Contains("cannot rename") && Contains("is_a_dir"));
    REQUIRE(fs::is_directory(target));
    auto entries = dir.entries();
    std::sort(entries.begin(), entries.end());
    REQUIRE(entries == std::vector<std::string>{"ckpt.safetensors", "is_a_dir"});
  }
  SECTION("a missing directory fails cleanly") {
    REQUIRE_THROWS_WITH(save_safetensors(dir.file("no/such/dir.safetensors"), {{"a", a}}), Contains("cannot create"));
  }
  // Whatever failed, the old file is intact and still loads.
  REQUIRE(read_bytes(path) == old_bytes);
  REQUIRE(load_safetensors(path).get("a").to_vector() == std::vector<float>{1, 2});
  REQUIRE(dir.entries().size() == (fs::exists(dir.file("is_a_dir")) ? 2u : 1u));
}
