// Tests for the `normlab` command (apps/): end-to-end runs of the built binary on a tiny
// synthetic IDX dataset written into a temp dir. Checks the run directory's files and
// columns, exit codes (ok 0, usage 2, diverged 3), model.safetensors contents, eval, and
// that a run killed mid-way and resumed ends with bit-identical weights (threads = 1).
//
// The binary is found next to this test executable (both are built into the build dir);
// NORMLAB_BIN overrides.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/safetensors.hpp"
#include "tests/support/cli_runner.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

using namespace nl::test;

TEST_CASE("normlab binary exists", "[app]") {
  INFO("looked for " << normlab_binary() << " (build the normlab target, or set NORMLAB_BIN)");
  REQUIRE(fs::exists(normlab_binary()));
}

TEST_CASE("a tiny run writes every file with the right columns and fields", "[app]") {
  const fs::path out = temp_root() / "tiny";
  const Run r = run_normlab(train_args("tiny", "--model mlp --norm bn --steps 20 --batch-size 16 --log-every 5 "
                                               "--checkpoint-every 10 --lr 0.1"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  for (const char* f : {"config.json", "metrics.csv", "eval.csv", "summary.json", "model.safetensors",
                        "train_state.safetensors"})
    CHECK(fs::exists(out / f));

  const auto metrics = read_lines(out / "metrics.csv");
  REQUIRE(metrics.size() == 5);  // header + steps 5, 10, 15, 20
  CHECK(metrics[0] == "step,epoch,train_loss,train_acc,lr,seconds");
  CHECK(metrics[4].rfind("20,", 0) == 0);
  const auto evals = read_lines(out / "eval.csv");
  REQUIRE(evals.size() >= 2);
  CHECK(evals[0] == "epoch,step,test_loss,test_acc");

  const json s = read_json_file(out / "summary.json");
  CHECK(s["status"] == "ok");
  CHECK(s["steps"] == 20);
  for (const char* k : {"test_accuracy", "test_loss", "final_train_loss", "epochs", "seconds", "images_per_second",
                        "peak_rss_mb"}) {
    INFO(k);
    CHECK(s[k].is_number());
  }
  CHECK(s["test_accuracy"].get<double>() > 0.3);  // the squares are easy: well above 10% chance

  const json c = read_json_file(out / "config.json");
  CHECK(c["seed"] == 0);
  CHECK(c["norm"]["name"] == "bn");
  CHECK(c["norm"]["stat_batch"] == 0);
  CHECK(c["model"]["name"] == "mlp");
  CHECK(c["resolved"]["threads"] == 1);
  CHECK(c["resolved"].contains("normlab_version"));
  CHECK(c["resolved"].contains("simd"));
}

TEST_CASE("config.json records the OpenMP wait policy and who chose it", "[app]") {
  // normlab chooses from the load at start unless the user chose (core/runtime_env.hpp); a user's value wins and is recorded as theirs.
  const Run mine = run_shell("env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u NORMLAB_OMP_WAIT_POLICY_SET " +
                             normlab_binary() + " " + train_args("wait-normlab", "--model mlp --steps 2"));
  INFO(mine.err);
  REQUIRE(mine.exit_code == 0);
  const std::string chosen = read_json_file(temp_root() / "wait-normlab" / "config.json")["resolved"]["omp_wait_policy"];
  INFO(chosen);
  const bool spin = chosen.rfind("GOMP_SPINCOUNT=10000 (set by normlab: ", 0) == 0;
  const bool passive = chosen.rfind("passive (set by normlab: ", 0) == 0;
  CHECK((spin || passive));
  CHECK(chosen.find(" other cores busy at start)") != std::string::npos);
  const Run users = run_shell("env -u GOMP_SPINCOUNT -u NORMLAB_OMP_WAIT_POLICY_SET OMP_WAIT_POLICY=active " +
                              normlab_binary() + " " + train_args("wait-user", "--model mlp --steps 2"));
  INFO(users.err);
  REQUIRE(users.exit_code == 0);
  CHECK(read_json_file(temp_root() / "wait-user" / "config.json")["resolved"]["omp_wait_policy"] ==
        "active (OMP_WAIT_POLICY set by the user)");
}

TEST_CASE("model.safetensors holds parameters and BN running statistics and round-trips", "[app]") {
  const fs::path out = temp_root() / "roundtrip";
  REQUIRE(run_normlab(train_args("roundtrip", "--model mlp --norm bn --steps 5 --batch-size 16")).exit_code == 0);
  const nl::TensorFile f = nl::load_safetensors((out / "model.safetensors").string());
  int running_means = 0, running_vars = 0;
  for (const auto& [name, t] : f.tensors) {
    running_means += name.find("running_mean") != std::string::npos;
    running_vars += name.find("running_var") != std::string::npos;
  }
  CHECK(running_means >= 1);
  CHECK(running_vars == running_means);
  CHECK(json::parse(f.meta("config"))["norm"]["name"] == "bn");
  // Saving what we loaded and loading it again gives the same tensors.
  const std::string copy = (out / "copy.safetensors").string();
  nl::save_safetensors(copy, f.tensors, f.metadata);
  const nl::TensorFile g = nl::load_safetensors(copy);
  REQUIRE(g.tensors.size() == f.tensors.size());
  for (size_t i = 0; i < f.tensors.size(); ++i) {
    CHECK(g.tensors[i].first == f.tensors[i].first);
    CHECK(g.tensors[i].second.to_vector() == f.tensors[i].second.to_vector());
  }
}

TEST_CASE("a diverging run stops with status 'diverged at step N' and exit code 3", "[app]") {
  const fs::path out = temp_root() / "nan";
  const Run r = run_normlab(train_args("nan", "--model cnn --norm bn --steps 30 --batch-size 16 --lr 1e30"));
  INFO(r.err);
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("diverged") != std::string::npos);
  const json s = read_json_file(out / "summary.json");
  CHECK(s["status"].get<std::string>().rfind("diverged at step ", 0) == 0);
}

TEST_CASE("bad flags and values give exit code 2 and name the flag", "[app]") {
  struct Case {
    const char* args;
    const char* mentions;
  };
  for (const Case& c : {Case{"--norm nosuchnorm", "--norm"}, Case{"--batch-size 0", "--batch-size"},
                        Case{"--lr -1", "--lr"}, Case{"--model nosuchmodel", "--model"},
                        Case{"--no-such-flag", "--no-such-flag"}, Case{"--norm gn --groups 7 --model cnn", "groups"},
                        Case{"--stat-batch 1", "--stat-batch"}, Case{"--norm gbn --stat-batch 4", "ghost_batch"}}) {
    const Run r = run_normlab(train_args("bad", std::string("--steps 2 ") + c.args));
    INFO(c.args << " -> " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(c.mentions) != std::string::npos);
  }
  // An existing run is never overwritten by accident (made here: ctest runs each case in its own process).
  const Run first = run_normlab(train_args("not-overwritten", "--steps 2"));
  REQUIRE(first.exit_code == 0);
  const Run again = run_normlab(train_args("not-overwritten", "--steps 2"));
  CHECK(again.exit_code == 2);
  CHECK(again.err.find("--resume") != std::string::npos);
}

TEST_CASE("a run killed at step k and resumed ends bit-identical to an uninterrupted run", "[app][resume]") {
  const std::string common = "--model cnn --norm bn --steps 24 --batch-size 16 --checkpoint-every 5 --log-every 4 "
                             "--optimizer adam --lr 0.003 --schedule cosine --warmup-steps 3";
  REQUIRE(run_normlab(train_args("whole", common)).exit_code == 0);
  // 512 / 16 = 32 batches per epoch; kill at 13 (last checkpoint 10), then resume.
  const Run killed = run_normlab(train_args("killed", common + " --simulate-kill-at-step 13"));
  CHECK(killed.exit_code == 137);
  CHECK_FALSE(fs::exists(temp_root() / "killed" / "summary.json"));
  const Run resumed = run_normlab("train --resume " + (temp_root() / "killed").string());
  INFO(resumed.err);
  REQUIRE(resumed.exit_code == 0);

  const nl::TensorFile a = nl::load_safetensors((temp_root() / "whole" / "model.safetensors").string());
  const nl::TensorFile b = nl::load_safetensors((temp_root() / "killed" / "model.safetensors").string());
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    INFO(a.tensors[i].first);
    CHECK(a.tensors[i].first == b.tensors[i].first);
    CHECK(a.tensors[i].second.to_vector() == b.tensors[i].second.to_vector());  // exact, not close
  }
  // The logs line up too (apart from wall-clock seconds): rows after the checkpoint were redone.
  const auto ma = read_lines(temp_root() / "whole" / "metrics.csv");
  const auto mb = read_lines(temp_root() / "killed" / "metrics.csv");
  REQUIRE(ma.size() == mb.size());
  for (size_t i = 0; i < ma.size(); ++i) CHECK(ma[i].substr(0, ma[i].rfind(',')) == mb[i].substr(0, mb[i].rfind(',')));
}

TEST_CASE("resume with a cumulative-average momentum continues the count (EvoNorm-B0)", "[app][resume]") {
  // --momentum -1: running = running + (batch - running) / num_batches_tracked. EvoNorm-B0
  // kept the count as a plain integer, not saved: a resumed run restarted it at 1 and its
  // first update replaced running_var with one batch's variance.
  const std::string common = "--model cnn --norm evonorm-b0 --momentum -1 --steps 12 --batch-size 16 "
                             "--checkpoint-every 5 --lr 0.01";
  REQUIRE(run_normlab(train_args("cma-whole", common)).exit_code == 0);
  REQUIRE(run_normlab(train_args("cma-killed", common + " --simulate-kill-at-step 7")).exit_code == 137);
  const Run resumed = run_normlab("train --resume " + (temp_root() / "cma-killed").string());
  INFO(resumed.err);
  REQUIRE(resumed.exit_code == 0);
  const nl::TensorFile a = nl::load_safetensors((temp_root() / "cma-whole" / "model.safetensors").string());
  const nl::TensorFile b = nl::load_safetensors((temp_root() / "cma-killed" / "model.safetensors").string());
  REQUIRE(a.tensors.size() == b.tensors.size());
  int counts = 0;
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    INFO(a.tensors[i].first);
    CHECK(a.tensors[i].first == b.tensors[i].first);
    CHECK(a.tensors[i].second.to_vector() == b.tensors[i].second.to_vector());  // exact
    if (a.tensors[i].first.find("num_batches_tracked") != std::string::npos) {
      ++counts;
      CHECK(a.tensors[i].second.item() == 12.0f);
    }
  }
  CHECK(counts >= 1);
}

TEST_CASE("PowerNorm: a run killed after warm-up's end resumes bit-identical (its buffers are checkpointed)",
          "[app][resume]") {
  // Warm-up 12: the checkpoint at 10 is in it, the resumed steps cross into running_phi.
  const std::string common = "--model mlp --width 32 --norm pn --pn-warmup 12 --steps 20 --batch-size 16 "
                             "--checkpoint-every 5 --log-every 4 --optimizer adam --lr 0.003";
  REQUIRE(run_normlab(train_args("pn-whole", common)).exit_code == 0);
  CHECK(run_normlab(train_args("pn-killed", common + " --simulate-kill-at-step 13")).exit_code == 137);
  const Run resumed = run_normlab("train --resume " + (temp_root() / "pn-killed").string());
  INFO(resumed.err);
  REQUIRE(resumed.exit_code == 0);
  const nl::TensorFile a = nl::load_safetensors((temp_root() / "pn-whole" / "model.safetensors").string());
  const nl::TensorFile b = nl::load_safetensors((temp_root() / "pn-killed" / "model.safetensors").string());
  REQUIRE(a.tensors.size() == b.tensors.size());
  int pn_buffers = 0;
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    INFO(a.tensors[i].first);
    CHECK(a.tensors[i].first == b.tensors[i].first);
    CHECK(a.tensors[i].second.to_vector() == b.tensors[i].second.to_vector());  // exact, not close
    const std::string& name = a.tensors[i].first;
    pn_buffers += name.find("running_phi") != std::string::npos || name.find("ema_gz") != std::string::npos ||
                  name.find("iters") != std::string::npos;
  }
  CHECK(pn_buffers == 9);  // 3 hidden PowerNorm layers x (running_phi, ema_gz, iters)
  const json c = read_json_file(temp_root() / "pn-whole" / "config.json");
  CHECK(c["norm"]["pn_warmup_steps"] == 12);
  CHECK(c["norm"]["pn_backward"] == "approximate");
  const Run bad = run_normlab(train_args("pn-bad", "--model mlp --norm pn --steps 2 --pn-backward approx"));
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("--pn-backward") != std::string::npos);
  const Run conv = run_normlab(train_args("pn-conv", "--model cnn --norm pn --steps 2"));
  CHECK(conv.exit_code == 2);
  CHECK(conv.err.find("not defined at the conv site") != std::string::npos);
}

TEST_CASE("eval reports running, batch and precise BN statistics", "[app]") {
  const fs::path out = temp_root() / "evalrun";
  REQUIRE(run_normlab(train_args("evalrun", "--model mlp --norm bn --steps 10 --batch-size 16")).exit_code == 0);
  const Run r = run_normlab("eval --run " + out.string() + " --data-dir " + data_dir() + " --precise-batches 5");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json j = read_json_file(out / "eval_modes.json");
  for (const char* mode : {"running", "batch", "precise"}) {
    INFO(mode);
    CHECK(j["modes"][mode]["accuracy"].is_number());
  }
  CHECK(run_normlab("eval --run " + (temp_root() / "no_such_run").string()).exit_code == 1);
}

TEST_CASE("eval's Precise BN sees the training augmentation of an --augment run", "[app]") {
  // Statistics re-estimated on un-augmented images are not the ones the weights were trained
  // with (Batch Renorm on CIFAR: 69.6% with running statistics, 55.9% with such a "precise"
  // estimate). The same weights evaluated with the run's augmentation switched off in
  // config.json: the running statistics give the same result, the precise ones do not.
  const fs::path out = temp_root() / "eval-augment";
  REQUIRE(run_normlab(train_args("eval-augment", "--model cnn --norm bn --steps 10 --batch-size 8 --augment")).exit_code ==
          0);
  auto eval = [&]() {
    const Run r = run_normlab("eval --run " + out.string() + " --data-dir " + data_dir() + " --precise-batches 4");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return read_json_file(out / "eval_modes.json")["modes"];
  };
  const json augmented = eval();
  json config = read_json_file(out / "config.json");
  REQUIRE(config["augment"] == true);
  config["augment"] = false;
  std::ofstream(out / "config.json") << config.dump(2);
  const json plain = eval();
  CHECK(plain["running"]["loss"].get<double>() == augmented["running"]["loss"].get<double>());
  CHECK(plain["precise"]["loss"].get<double>() != augmented["precise"]["loss"].get<double>());
}

TEST_CASE("same seed and thread count: the same metrics.csv, bit for bit", "[app][determinism]") {
  // Two threads, so the parallel kernels' fixed split is what is being tested.
  const std::string args = "train --dataset mnist --data-dir " + data_dir() +
                           " --model cnn --norm gn --groups 4 --steps 12 --batch-size 16 --log-every 1 --threads 2 --out ";
  REQUIRE(run_normlab(args + (temp_root() / "det-a").string()).exit_code == 0);
  REQUIRE(run_normlab(args + (temp_root() / "det-b").string()).exit_code == 0);
  const auto a = read_lines(temp_root() / "det-a" / "metrics.csv");
  const auto b = read_lines(temp_root() / "det-b" / "metrics.csv");
  REQUIRE(a.size() == 13);
  REQUIRE(a.size() == b.size());
  // Every column but the last (wall-clock seconds) must be identical text.
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].substr(0, a[i].rfind(',')) == b[i].substr(0, b[i].rfind(',')));
  const nl::TensorFile wa = nl::load_safetensors((temp_root() / "det-a" / "model.safetensors").string());
  const nl::TensorFile wb = nl::load_safetensors((temp_root() / "det-b" / "model.safetensors").string());
  for (size_t i = 0; i < wa.tensors.size(); ++i) CHECK(wa.tensors[i].second.to_vector() == wb.tensors[i].second.to_vector());
}

TEST_CASE("a truncated or tampered checkpoint is refused with a message naming the file", "[app][resume]") {
  const std::string args = "--model mlp --norm bn --steps 8 --batch-size 16 --checkpoint-every 4";
  REQUIRE(run_normlab(train_args("trunc", args + " --simulate-kill-at-step 6")).exit_code == 137);
  const fs::path state = temp_root() / "trunc" / "train_state.safetensors";
  REQUIRE(fs::exists(state));
  fs::resize_file(state, fs::file_size(state) / 2);
  const Run r = run_normlab("train --resume " + (temp_root() / "trunc").string());
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("train_state.safetensors") != std::string::npos);
  // The finished model file of another run is never replaced by a failed resume.
  CHECK_FALSE(fs::exists(temp_root() / "trunc" / "summary.json.tmp"));
}
