// normlab tests: regressions for bad input.
//
// 1. Saved fuzz inputs. Every file in tests/fuzz_corpus/<target>/ (inputs that once crashed
//    a reader or broke an invariant, minimized) and fuzz/seeds/<target>/ (valid examples) is
//    replayed through the *same* harness libFuzzer runs: the fuzz/fuzz_<target>.cpp sources
//    are compiled into this test with their entry point renamed. Each harness calls the
//    reader (IDX, CIFAR-10, gzip, text corpus, safetensors) and requires a result that meets
//    the reader's invariants or an nl::Error naming the file; anything else (another
//    exception, a broken invariant, a crash) fails here, in the normal GCC build and ctest.
// 2. The bugs the fuzzers and sanitizers found, each pinned with its exact expected error.
// 3. Bad input at the API level: mismatched shapes name both shapes; GroupNorm groups that
//    do not divide the channels; BatchNorm-family training with one value per channel; unknown
//    norm and model names (completing the checks in test_ops_*, test_norm_*, test_models).
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#define NORMLAB_FUZZ_REPLAY 1
#define LLVMFuzzerTestOneInput fuzz_idx_one
#include "fuzz/fuzz_idx.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_cifar10_one
#include "fuzz/fuzz_cifar10.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_gzip_one
#include "fuzz/fuzz_gzip.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_text_corpus_one
#include "fuzz/fuzz_text_corpus.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_safetensors_one
#include "fuzz/fuzz_safetensors.cpp"
#undef LLVMFuzzerTestOneInput

#include "core/ops.hpp"
#include "core/safetensors.hpp"
#include "data/gzip_file.hpp"
#include "layers/models/model.hpp"
#include "layers/norm/factory.hpp"

using namespace nl;
namespace fs = std::filesystem;

namespace {

using Harness = int (*)(const uint8_t*, size_t);

const fs::path kRepo = fs::path(NORMLAB_FIXTURE_DIR).parent_path().parent_path();

std::vector<uint8_t> slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Replays every regular file of tests/fuzz_corpus/<target> and fuzz/seeds/<target>; returns
// how many were replayed. A harness either returns (success or nl::Error naming the file)
// or throws: a broken invariant or an exception other than nl::Error escaping the reader.
size_t replay(const std::string& target, Harness harness) {
  size_t replayed = 0;
  for (const fs::path& dir : {kRepo / "tests" / "fuzz_corpus" / target, kRepo / "fuzz" / "seeds" / target}) {
    if (!fs::is_directory(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      const std::vector<uint8_t> bytes = slurp(entry.path());
      INFO("replaying " << entry.path().string() << " (" << bytes.size() << " bytes) through fuzz_" << target);
      CHECK_NOTHROW(harness(bytes.data(), bytes.size()));
      ++replayed;
    }
  }
  return replayed;
}

// A scratch file holding `bytes`, removed at exit.
std::string file_with(const std::string& tag, const std::string& bytes) {
  const std::string path = nl::fuzz::scratch_path(tag.c_str());
  nl::fuzz::write_file(path, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  return path;
}

// A safetensors file whose header is `json` (padding added) and data section `data_bytes` zeros.
std::string safetensors_bytes(std::string json, size_t data_bytes) {
  json.append((8 - (8 + json.size()) % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((json.size() >> (8 * i)) & 0xff);
  return out + json + std::string(data_bytes, '\0');
}

}  // namespace

// ---------------------------------------------------------------- 1. saved fuzz inputs

TEST_CASE("saved fuzz inputs replay without a crash: IDX", "[regressions][fuzz]") {
  REQUIRE(replay("idx", fuzz_idx_one) >= 4);
}
TEST_CASE("saved fuzz inputs replay without a crash: CIFAR-10", "[regressions][fuzz]") {
  REQUIRE(replay("cifar10", fuzz_cifar10_one) >= 2);
}
TEST_CASE("saved fuzz inputs replay without a crash: gzip", "[regressions][fuzz]") {
  REQUIRE(replay("gzip", fuzz_gzip_one) >= 3);
}
TEST_CASE("saved fuzz inputs replay without a crash: text corpus", "[regressions][fuzz]") {
  REQUIRE(replay("text_corpus", fuzz_text_corpus_one) >= 2);
}
TEST_CASE("saved fuzz inputs replay without a crash: safetensors", "[regressions][fuzz]") {
  REQUIRE(replay("safetensors", fuzz_safetensors_one) >= 3);
}

TEST_CASE("the replay harnesses can fail: a broken invariant or a foreign exception is reported", "[regressions][fuzz]") {
  // The harness contract itself: FUZZ_REQUIRE throws in this build ...
  CHECK_THROWS_AS([] { FUZZ_REQUIRE(1 + 1 == 3); }(), nl::fuzz::InvariantBroken);
  // ... and a corrupt input reaches the reader's error path, not a silent success: the
  // harness accepts the nl::Error only because it names the file.
  const std::string path = file_with("regress_idx", std::string("\x00\x00\x08\x03", 4));
  CHECK_THROWS_WITH(nl::data::read_idx_images(path), Catch::Contains(path) && Catch::Contains("header"));
}

// ---------------------------------------------------------------- 2. bugs found by fuzzing

TEST_CASE("safetensors: a zero dim does not hide an int64 overflow in the other dims", "[regressions][safetensors]") {
  // fuzz_safetensors (UBSan): [0, 2^62, 2^62] has numel 0, so the byte-count check passed,
  // and Tensor::empty computed the strides 2^62 * 2^62: signed overflow (undefined behaviour).
  const std::string a = file_with("regress_st_a", safetensors_bytes(
      R"({"x":{"dtype":"F32","shape":[0,4611686018427387904,4611686018427387904],"data_offsets":[0,0]}})", 0));
  CHECK_THROWS_WITH(load_safetensors(a), Catch::Contains(a) && Catch::Contains("too large"));
  // [0, 2^63 + 5] became a negative int64 dim; Tensor::empty threw an error without the file name.
  const std::string b = file_with("regress_st_b", safetensors_bytes(
      R"({"x":{"dtype":"F32","shape":[0,9223372036854775813],"data_offsets":[0,0]}})", 0));
  CHECK_THROWS_WITH(load_safetensors(b), Catch::Contains(b) && Catch::Contains("too large"));
  // Still legal: empty tensors with ordinary dims.
  const std::string c = file_with("regress_st_c", safetensors_bytes(
      R"({"x":{"dtype":"F32","shape":[0,1000000],"data_offsets":[0,0]}})", 0));
  CHECK(load_safetensors(c).get("x").shape() == Shape{0, 1000000});
}

TEST_CASE("safetensors: deeply nested JSON is refused, not a stack overflow", "[regressions][safetensors]") {
  // fuzz_safetensors (ASan stack-overflow): {"x": [[[[...]]]]} reached the error message
  // "entry must be an object, got <dump>", and dump() recursed once per level.
  const int depth = 20000;
  const std::string nested = std::string(depth, '[') + std::string(depth, ']');
  for (const std::string& header : {R"({"x":)" + nested + "}", R"({"__metadata__":{"k":)" + nested + "}}", nested}) {
    const std::string path = file_with("regress_st_deep", safetensors_bytes(header, 0));
    CHECK_THROWS_WITH(load_safetensors(path), Catch::Contains(path) && Catch::Contains("nests"));
  }
  // The deepest legal header (a shape array inside an entry object) still loads.
  const std::string ok = file_with("regress_st_ok", safetensors_bytes(
      R"({"x":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"__metadata__":{"k":"v"}})", 8));
  CHECK(load_safetensors(ok).meta("k") == "v");
}

TEST_CASE("safetensors: a tensor with an empty name is refused at load, as at save", "[regressions][safetensors]") {
  // fuzz_safetensors round trip: load accepted "" as a name, then save_safetensors of the
  // very same tensors threw: a checkpoint that could be read but never written back.
  const std::string path = file_with("regress_st_empty", safetensors_bytes(
      R"({"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4));
  CHECK_THROWS_WITH(load_safetensors(path), Catch::Contains(path) && Catch::Contains("empty name"));
}

// ---------------------------------------------------------------- 3. bad input at the API level
// Each message must let a user fix the call without reading the source: the op or layer and
// every shape involved.

TEST_CASE("elementwise ops and losses name both shapes on a mismatch", "[regressions][errors]") {
  const Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4});
  // test_ops_elementwise checks both shapes for add only; the other binary ops share the
  // broadcasting check but each must name itself.
  CHECK_THROWS_WITH(sub(a, b), Catch::Contains("sub") && Catch::Contains("[2, 3]") && Catch::Contains("[4]"));
  CHECK_THROWS_WITH(mul(a, b), Catch::Contains("mul") && Catch::Contains("[2, 3]") && Catch::Contains("[4]"));
  CHECK_THROWS_WITH(div(b, a), Catch::Contains("div") && Catch::Contains("[4]") && Catch::Contains("[2, 3]"));
  CHECK_THROWS_WITH(mse_loss(a, Tensor::zeros({3, 2})),
                    Catch::Contains("mse_loss") && Catch::Contains("[2, 3]") && Catch::Contains("[3, 2]"));
  // A legal broadcast still works (the check is not over-eager).
  CHECK(add(a, Tensor::zeros({3})).shape() == Shape{2, 3});
}

TEST_CASE("a norm given the wrong feature shape names the layer's shape and the input's", "[regressions][errors]") {
  NormOptions o;
  for (const char* name : {"ln", "rms"}) {
    o.name = name;
    auto norm = make_norm(o, {8}, NormSite::features);
    INFO("norm " << name);
    CHECK_THROWS_WITH(norm->forward(Tensor::zeros({2, 7})), Catch::Contains("[2, 7]") && Catch::Contains("8"));
  }
}

TEST_CASE("GroupNorm groups that do not divide the channels fail when the model is built", "[regressions][errors]") {
  // test_norm_factory covers make_norm; this is the path a user takes (--model cnn --norm gn
  // --groups 7): the error comes from make_model, before any training, naming groups and C.
  ModelOptions mo;
  mo.name = "cnn";
  NormOptions no;
  no.name = "gn";
  no.groups = 7;
  CHECK_THROWS_WITH(make_model(mo, no), Catch::Contains("groups=7") && Catch::Contains("32"));
  no.groups = 8;
  CHECK(make_model(mo, no) != nullptr);
}

TEST_CASE("every batch-statistics norm refuses training with one value per channel", "[regressions][errors][bn]") {
  // test_norm_batch checks the message of BatchNorm itself and only the exception type for
  // the others. Through the factory, each method that normalizes with batch statistics
  // must say why, with the shape, for a batch of one feature vector and one 1x1 image.
  NormOptions o;
  for (const char* name : {"bn", "mobn", "brn", "gbn"}) {
    o.name = name;
    INFO("norm " << name);
    auto features = make_norm(o, {8}, NormSite::features);
    features->train();
    CHECK_THROWS_WITH(features->forward(Tensor::ones({1, 8})),
                      Catch::Contains("more than 1 value per channel") && Catch::Contains("[1, 8]"));
    auto conv = make_norm(o, {8, 1, 1}, NormSite::conv);
    conv->train();
    CHECK_THROWS_WITH(conv->forward(Tensor::ones({1, 8, 1, 1})),
                      Catch::Contains("more than 1 value per channel") && Catch::Contains("[1, 8, 1, 1]"));
    // Two values per channel are enough, and evaluation with one is fine.
    CHECK(features->forward(Tensor::ones({2, 8})).shape() == Shape{2, 8});
    features->eval();
    CHECK(features->forward(Tensor::ones({1, 8})).shape() == Shape{1, 8});
  }
}

TEST_CASE("unknown norm and model names list the valid ones", "[regressions][errors]") {
  ModelOptions mo;
  NormOptions no;
  no.name = "batchnorm";  // a plausible typo for "bn"
  CHECK_THROWS_WITH(make_model(mo, no), Catch::Contains("unknown norm 'batchnorm'") && Catch::Contains("bn"));
  no.name = "bn";
  mo.name = "resnet18";
  CHECK_THROWS_WITH(make_model(mo, no), Catch::Contains("resnet18") && Catch::Contains("resnet20") &&
                                            Catch::Contains("mlp"));
  no.name = "";
  mo.name = "mlp";
  CHECK_THROWS_AS(make_model(mo, no), Error);
}
