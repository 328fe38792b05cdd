// End-to-end tests of data-parallel training: `mpirun -np 2 normlab train` against one
// process, on the tiny synthetic MNIST-shaped dataset of tests/support/cli_runner.
//  * CNN + GroupNorm, 50 steps of 2 ranks x 16 follow one process at batch 32 step by step
//    (the same examples each step; only the order of float sums differs), and the ranks end
//    with bit-identical parameters (summary.json's per-rank checksums);
//  * per-worker BatchNorm on 2 ranks x 16 = one process at batch 32 with --stat-batch 16;
//  * a rank that cannot read its data, and a rank that dies mid-run, end the job with a
//    message naming the rank and leave no half-written checkpoint; the killed run resumes
//    under mpirun to the same weights as a run that never stopped.
// Every case starts its own mpirun: ctest runs this file as ordinary tests.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/safetensors.hpp"
#include "tests/support/cli_runner.hpp"

namespace fs = std::filesystem;
using namespace nl::test;
using Catch::Matchers::Contains;

namespace {

std::string train_cmd(const std::string& out, const std::string& extra) {
  return normlab_binary() + " " + train_args(out, "--model cnn --steps 50 --log-every 1 --lr 0.05 " + extra);
}

std::vector<double> losses(const std::string& run) {
  std::vector<double> v;
  const auto lines = read_lines(temp_root() / run / "metrics.csv");
  for (size_t i = 1; i < lines.size(); ++i) v.push_back(std::stod(lines[i].substr(lines[i].find(',', lines[i].find(',') + 1) + 1)));
  return v;
}

// The worst relative difference of two loss curves, step by step.
double max_relative_difference(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]) / std::abs(b[i]));
  return worst;
}

}  // namespace

TEST_CASE("gn CNN: 2 ranks x 16 follow one process at batch 32 step by step", "[mpi][data-parallel]") {
  const Run one = run_shell(train_cmd("gn-one", "--norm gn --groups 4 --batch-size 32"));
  INFO(one.err);
  REQUIRE(one.exit_code == 0);
  const Run two = run_shell(mpirun(2) + train_cmd("gn-two", "--norm gn --groups 4 --batch-size 16"));
  INFO(two.err);
  REQUIRE(two.exit_code == 0);
  const auto a = losses("gn-one"), b = losses("gn-two");
  REQUIRE(a.size() == 50);
  // Identical examples per step; only the rounding of sums differs (a gradient summed as
  // 16 + 16 instead of 32 terms), and 50 steps of SGD amplify that a little.
  const double worst = max_relative_difference(a, b);
  INFO("worst relative loss difference over 50 steps: " << worst);
  CHECK(worst < 1e-3);
  CHECK(a.front() == Approx(b.front()).epsilon(1e-6));  // step 1: before any update
  CHECK(a != b);  // not the same run twice: the sums really were split

  const auto config = read_json_file(temp_root() / "gn-two" / "config.json");
  CHECK(config["batch_size"] == 16);
  CHECK(config["resolved"]["world_size"] == 2);
  CHECK(config["resolved"]["global_batch_size"] == 32);
  const auto summary = read_json_file(temp_root() / "gn-two" / "summary.json");
  CHECK(summary["parameters_identical_across_ranks"] == true);
  REQUIRE(summary["parameter_checksums"].size() == 2);
  CHECK(summary["parameter_checksums"][0] == summary["parameter_checksums"][1]);
  CHECK(summary["world_size"] == 2);
  // Global throughput: images/s counts both ranks' images (32 per step).
  CHECK(summary["images_per_second"].get<double>() > 0);
}

TEST_CASE("per-worker BN on 2 ranks x 16 equals --stat-batch 16 in one process's batch 32", "[mpi][data-parallel]") {
  const Run one = run_shell(train_cmd("bn-groups", "--norm bn --batch-size 32 --stat-batch 16"));
  INFO(one.err);
  REQUIRE(one.exit_code == 0);
  const Run two = run_shell(mpirun(2) + train_cmd("bn-ranks", "--norm bn --batch-size 16"));
  INFO(two.err);
  REQUIRE(two.exit_code == 0);
  const double worst = max_relative_difference(losses("bn-groups"), losses("bn-ranks"));
  INFO("worst relative loss difference over 50 steps: " << worst);
  CHECK(worst < 1e-3);
  // And not what whole-batch statistics give: the equality above is about the groups.
  const Run whole = run_shell(train_cmd("bn-whole", "--norm bn --batch-size 32"));
  REQUIRE(whole.exit_code == 0);
  CHECK(max_relative_difference(losses("bn-whole"), losses("bn-ranks")) > 1e-3);
}

TEST_CASE("a rank that cannot read its data ends the job naming the rank, writing nothing", "[mpi][data-parallel]") {
  // Two app contexts: rank 0 finds the data through NORMLAB_DATA_DIR, rank 1 looks elsewhere.
  const std::string args = " " + normlab_binary() + " train --dataset mnist --model mlp --steps 5 --batch-size 8 "
                           "--threads 1 --out " + (temp_root() / "no-data").string();
  const Run r = run_shell(mpirun(1) + "-x NORMLAB_DATA_DIR=" + data_dir() + args + " : -np 1 -x NORMLAB_DATA_DIR=" +
                          (temp_root() / "nowhere").string() + args);
  INFO(r.err);
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Contains("rank 1 of 2") && Contains("nowhere"));
  CHECK_FALSE(fs::exists(temp_root() / "no-data"));  // not even config.json
}

TEST_CASE("a rank killed mid-run ends the job, and the run resumes under mpirun to the same weights", "[mpi][data-parallel]") {
  const std::string common = "--norm gn --groups 4 --batch-size 16 --steps 12 --checkpoint-every 4 ";
  const Run full = run_shell(mpirun(2) + normlab_binary() + " " + train_args("kill-full", "--model cnn " + common));
  INFO(full.err);
  REQUIRE(full.exit_code == 0);

  const fs::path dir = temp_root() / "kill";
  const Run killed = run_shell(mpirun(2) + normlab_binary() + " " +
                               train_args("kill", "--model cnn " + common +
                                                      "--simulate-kill-at-step 6 --simulate-kill-rank 1"));
  INFO(killed.err);
  CHECK(killed.exit_code != 0);
  CHECK_THAT(killed.err, Contains("simulated kill of rank 1 at step 6"));
  CHECK_FALSE(fs::exists(dir / "summary.json"));
  // The checkpoint on disk is a whole one (step 4): written to a temp file and renamed.
  REQUIRE(fs::exists(dir / "train_state.safetensors"));
  CHECK_NOTHROW(nl::load_safetensors((dir / "train_state.safetensors").string()));

  const Run resumed = run_shell(mpirun(2) + normlab_binary() + " train --resume " + dir.string());
  INFO(resumed.err);
  REQUIRE(resumed.exit_code == 0);
  CHECK_THAT(resumed.err, Contains("resuming"));
  CHECK(read_json_file(dir / "summary.json")["parameters_identical_across_ranks"] == true);
  // Same steps, same data, one thread per rank: the same bits as the run that never stopped.
  const auto a = nl::load_safetensors((dir / "model.safetensors").string());
  const auto b = nl::load_safetensors((temp_root() / "kill-full" / "model.safetensors").string());
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    INFO(a.tensors[i].first);
    CHECK(a.tensors[i].first == b.tensors[i].first);
    CHECK(a.tensors[i].second.to_vector() == b.tensors[i].second.to_vector());
  }
}

TEST_CASE("SyncBN (--sync-bn) on 2 ranks x 16 follows whole-batch BN in one process at batch 32", "[mpi][data-parallel][syncbn]") {
  const Run one = run_shell(train_cmd("syncbn-one", "--norm bn --batch-size 32"));
  INFO(one.err);
  REQUIRE(one.exit_code == 0);
  const Run two = run_shell(mpirun(2) + train_cmd("syncbn-two", "--norm bn --sync-bn --batch-size 16"));
  INFO(two.err);
  REQUIRE(two.exit_code == 0);
  const double worst = max_relative_difference(losses("syncbn-one"), losses("syncbn-two"));
  INFO("worst relative loss difference over 50 steps: " << worst);
  CHECK(worst < 1e-3);
  CHECK(read_json_file(temp_root() / "syncbn-two" / "config.json")["norm"]["name"] == "syncbn");
  // The running statistics are the whole batch's on every rank, so rank 0's saved ones match.
  const auto a = nl::load_safetensors((temp_root() / "syncbn-one" / "model.safetensors").string());
  const auto b = nl::load_safetensors((temp_root() / "syncbn-two" / "model.safetensors").string());
  for (size_t i = 0; i < a.tensors.size(); ++i)
    if (a.tensors[i].first.find("running_mean") != std::string::npos) {
      INFO(a.tensors[i].first);
      const auto x = a.tensors[i].second.to_vector(), y = b.tensors[i].second.to_vector();
      for (size_t k = 0; k < x.size(); ++k) CHECK(y[k] == Approx(x[k]).margin(1e-3).epsilon(1e-2));
    }
}

TEST_CASE("SyncBN (--sync-bn) without mpirun, or with a norm other than bn, is a usage error", "[data-parallel][syncbn]") {
  const Run alone = run_normlab(train_args("syncbn-alone", "--model mlp --norm bn --sync-bn --steps 2"));
  CHECK(alone.exit_code == 2);
  CHECK_THAT(alone.err, Contains("--sync-bn") && Contains("mpirun -np K"));
  CHECK_FALSE(fs::exists(temp_root() / "syncbn-alone"));
  const Run gn = run_normlab(train_args("syncbn-gn", "--model mlp --norm gn --sync-bn --steps 2"));
  CHECK(gn.exit_code == 2);
  CHECK_THAT(gn.err, Contains("--sync-bn") && Contains("--norm bn"));
}
