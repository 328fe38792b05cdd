// Tests for non-i.i.d. batches (data/class_batches.hpp, `normlab train --classes-per-batch K`):
// every batch holds exactly K classes in quotas as even as the batch size allows, an epoch
// visits each example at most once and leaves only the stated leftovers, the number of
// batches per epoch does not depend on the seed, the order is a pure function of
// (seed, epoch, batch), a killed and resumed run ends bit-identical, and bad K is refused.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "core/safetensors.hpp"
#include "data/class_batches.hpp"
#include "data/loader.hpp"
#include "tests/support/cli_runner.hpp"

using namespace nl::data;
namespace fs = std::filesystem;

namespace {

// n 1x2x2 images; class of example i from `label_of`.
ImageDataset labelled(int64_t n, int32_t num_classes, int32_t (*label_of)(int64_t)) {
  ImageDataset ds;
  ds.name = "labelled";
  ds.n = n;
  ds.channels = 1;
  ds.height = ds.width = 2;
  ds.num_classes = num_classes;
  ds.class_names = numbered_class_names(num_classes);
  ds.pixels.assign(n * 4, 0);
  for (int64_t i = 0; i < n; ++i) ds.labels.push_back(label_of(i));
  return ds;
}
int32_t balanced10(int64_t i) { return static_cast<int32_t>(i % 10); }
// Class 0 holds 8/13 of the examples (more than half), classes 1..9 share the rest.
int32_t skewed10(int64_t i) { return i % 13 < 8 ? 0 : static_cast<int32_t>(1 + i % 9); }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

LoaderOptions k_class_options(int64_t batch_size, int64_t classes_per_batch, uint64_t seed) {
  LoaderOptions o;
  o.batch_size = batch_size;
  o.drop_last = true;
  o.classes_per_batch = classes_per_batch;
  o.seed = seed;
  return o;
}

std::vector<std::vector<int64_t>> epoch_batches(DataLoader& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<std::vector<int64_t>> out;
  Batch b;
  while (loader.next(b)) out.push_back(b.indices);
  return out;
}

}  // namespace

TEST_CASE("every batch holds exactly K classes, in quotas as even as the batch size allows", "[data][classes]") {
  for (auto label_of : {balanced10, skewed10})
    for (auto [B, K] : {std::pair<int64_t, int64_t>{32, 2}, {10, 3}, {7, 7}, {4, 1}, {12, 10}}) {
      INFO("B = " << B << ", K = " << K << (label_of == balanced10 ? ", balanced" : ", skewed"));
      const ImageDataset ds = labelled(1000, 10, label_of);
      DataLoader loader(ds, k_class_options(B, K, 3));
      const auto batches = epoch_batches(loader, 0);
      REQUIRE(batches.size() == static_cast<size_t>(loader.batches_per_epoch()));
      REQUIRE(!batches.empty());
      std::multiset<int64_t> expected_quotas;
      for (int64_t j = 0; j < K; ++j) expected_quotas.insert(B / K + (j < B % K));
      for (const auto& batch : batches) {
        REQUIRE(static_cast<int64_t>(batch.size()) == B);
        std::map<int32_t, int64_t> per_class;
        for (int64_t i : batch) ++per_class[ds.labels[i]];
        REQUIRE(static_cast<int64_t>(per_class.size()) == K);
        std::multiset<int64_t> quotas;
        for (auto [c, count] : per_class) quotas.insert(count);
        REQUIRE(quotas == expected_quotas);
      }
    }
}

TEST_CASE("an epoch of K-class batches visits each example at most once and leaves few out", "[data][classes]") {
  const int64_t B = 32, K = 2, n = 5000;
  const ImageDataset ds = labelled(n, 10, balanced10);
  DataLoader loader(ds, k_class_options(B, K, 5));
  std::set<int64_t> left_out_before;
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    const auto batches = epoch_batches(loader, epoch);
    std::set<int64_t> seen;
    for (const auto& batch : batches)
      for (int64_t i : batch) CHECK(seen.insert(i).second);  // no example twice in an epoch
    const int64_t left_out = n - static_cast<int64_t>(seen.size());
    // The header's bound for a balanced dataset: fewer than (classes + K) x ceil(B/K).
    CHECK(left_out < (10 + K) * ((B + K - 1) / K));
    CHECK(left_out == n - loader.batches_per_epoch() * B);
    // The order is a permutation: the batches first, then the leftovers.
    auto order = loader.epoch_order(epoch);
    std::sort(order.begin(), order.end());
    for (int64_t i = 0; i < n; ++i) REQUIRE(order[i] == i);
    std::set<int64_t> left;
    for (int64_t i = 0; i < n; ++i)
      if (!seen.count(i)) left.insert(i);
    if (epoch > 0) CHECK(left != left_out_before);  // other examples are left out each epoch
    left_out_before = left;
  }
  // The epoch length depends on the class sizes only, not on the seed.
  for (uint64_t seed : {0u, 1u, 99u}) {
    DataLoader other(ds, k_class_options(B, K, seed));
    CHECK(other.batches_per_epoch() == loader.batches_per_epoch());
    CHECK(static_cast<int64_t>(epoch_batches(other, 0).size()) == loader.batches_per_epoch());
  }
  // A class with more than 1/K of the data cannot be used up (a batch holds at most ceil(B/K)
  // of it): its surplus is left out.
  const ImageDataset skewed = labelled(n, 10, skewed10);
  DataLoader s(skewed, k_class_options(B, K, 5));
  CHECK(s.batches_per_epoch() * B < n - (10 + K) * ((B + K - 1) / K));
}

TEST_CASE("K-class batches are a pure function of (seed, epoch, batch index)", "[data][classes]") {
  const ImageDataset ds = labelled(600, 10, balanced10);
  const LoaderOptions opt = k_class_options(12, 3, 11);
  DataLoader a(ds, opt);
  LoaderOptions sync = opt;
  sync.background = false;
  DataLoader b(ds, sync);
  const auto a0 = epoch_batches(a, 0), a1 = epoch_batches(a, 1);
  CHECK(epoch_batches(b, 0) == a0);
  CHECK(epoch_batches(b, 1) == a1);
  CHECK(a0 != a1);
  // The classes chosen differ from batch to batch (not one fixed rotation).
  std::set<std::set<int32_t>> class_sets;
  for (const auto& batch : a0) {
    std::set<int32_t> classes;
    for (int64_t i : batch) classes.insert(ds.labels[i]);
    class_sets.insert(classes);
  }
  CHECK(class_sets.size() > 10);
  // Resumed at (epoch 1, batch 7): the same batches as the uninterrupted loader.
  DataLoader resumed(ds, opt);
  resumed.start_epoch(1, 7);
  Batch batch;
  for (size_t k = 7; k < a1.size(); ++k) {
    REQUIRE(resumed.next(batch));
    CHECK(batch.indices == a1[k]);
  }
  CHECK_FALSE(resumed.next(batch));
  LoaderOptions other = opt;
  other.seed = 12;
  DataLoader c(ds, other);
  CHECK(epoch_batches(c, 0) != a0);
}

TEST_CASE("bad K is refused with a message naming the problem", "[data][classes]") {
  const ImageDataset ds = labelled(100, 10, balanced10);
  auto make = [&](int64_t B, int64_t K, bool shuffle = true) {
    return error_of([&] {
      LoaderOptions o = k_class_options(B, K, 0);
      o.shuffle = shuffle;
      DataLoader l(ds, o);
    });
  };
  CHECK_THAT(make(8, -1), Catch::Contains(">= 1"));
  CHECK_THAT(make(16, 11), Catch::Contains("exceeds the 10 classes"));
  CHECK_THAT(make(4, 5), Catch::Contains("exceeds the batch size (4)"));
  CHECK_THAT(make(8, 2, false), Catch::Contains("needs shuffle"));
  CHECK_THAT(make(100, 5), Catch::Contains("not even one batch"));  // 10 per class, quota 20
}

TEST_CASE("normlab train --classes-per-batch: recorded, resumable bit for bit, bad values refused", "[app][classes]") {
  using namespace nl::test;
  const std::string common = "--model mlp --norm bn --steps 12 --batch-size 16 --classes-per-batch 2 "
                             "--checkpoint-every 5 --log-every 3";
  const Run whole = run_normlab(train_args("cpb-whole", common));
  INFO(whole.err);
  REQUIRE(whole.exit_code == 0);
  const auto config = read_json_file(temp_root() / "cpb-whole" / "config.json");
  CHECK(config["classes_per_batch"] == 2);
  // Every image is either in one of the epoch's batches or skipped.
  CHECK(config["resolved"]["steps_per_epoch"].get<int64_t>() * 16 +
            config["resolved"]["examples_skipped_per_epoch"].get<int64_t>() ==
        512);

  const Run killed = run_normlab(train_args("cpb-killed", common + " --simulate-kill-at-step 7"));
  CHECK(killed.exit_code == 137);
  const Run resumed = run_normlab("train --resume " + (temp_root() / "cpb-killed").string());
  INFO(resumed.err);
  REQUIRE(resumed.exit_code == 0);
  const nl::TensorFile a = nl::load_safetensors((temp_root() / "cpb-whole" / "model.safetensors").string());
  const nl::TensorFile b = nl::load_safetensors((temp_root() / "cpb-killed" / "model.safetensors").string());
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) CHECK(a.tensors[i].second.to_vector() == b.tensors[i].second.to_vector());

  // Another K trains on other batches: the flag reaches the loader.
  REQUIRE(run_normlab(train_args("cpb-k5", "--model mlp --norm bn --steps 12 --batch-size 16 --classes-per-batch 5 "
                                           "--checkpoint-every 5 --log-every 3"))
              .exit_code == 0);
  CHECK(read_lines(temp_root() / "cpb-k5" / "metrics.csv")[1] != read_lines(temp_root() / "cpb-whole" / "metrics.csv")[1]);

  const Run too_many = run_normlab(train_args("cpb-bad1", "--model mlp --steps 2 --batch-size 16 --classes-per-batch 11"));
  CHECK(too_many.exit_code == 2);
  CHECK_THAT(too_many.err, Catch::Contains("--classes-per-batch") && Catch::Contains("10 classes"));
  const Run too_big = run_normlab(train_args("cpb-bad2", "--model mlp --steps 2 --batch-size 4 --classes-per-batch 5"));
  CHECK(too_big.exit_code == 2);
  CHECK_THAT(too_big.err, Catch::Contains("batch size (4)"));
  const Run negative = run_normlab(train_args("cpb-bad3", "--model mlp --steps 2 --classes-per-batch -1"));
  CHECK(negative.exit_code == 2);
  CHECK_THAT(negative.err, Catch::Contains("--classes-per-batch"));
  const fs::path text = temp_root() / "tiny.txt";
  {
    std::ofstream(text) << std::string(2000, 'a') + std::string(2000, 'b');
  }
  const Run on_text = run_normlab("train --dataset text:" + text.string() + " --model lstm --steps 2 --threads 1 "
                                  "--classes-per-batch 2 --out " + (temp_root() / "cpb-text").string());
  CHECK(on_text.exit_code == 2);
  CHECK_THAT(on_text.err, Catch::Contains("--classes-per-batch needs an image classification dataset"));
}
