// normlab apps: `normlab sweep`. One `normlab train` child process per (variant, batch size,
// seed), --jobs at a time, each with --threads threads (on small models, processes scale
// better than threads). Every run is an ordinary run directory under OUT, so a sweep is
// resumable for free: a run whose summary.json says "ok" or "diverged" is finished and never
// touched again; an interrupted one resumes from its checkpoint, or restarts from scratch if it
// never wrote one. Results are gathered into OUT/results.csv after every finished run.
// Spread over machines, each process runs one shard of the plan and claims each run before
// starting it (apps/shard.hpp), so shards can share OUT.
// With --results DIR, a run finished in DIR (a committed compact copy, see export_results.cpp)
// counts as finished too, so a sweep continued on another machine only runs what is missing.
#include "apps/sweep.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apps/commands.hpp"
#include "apps/run_dir.hpp"
#include "apps/shard.hpp"
#include "apps/train_config.hpp"
#include "layers/norm/factory.hpp"
#include "core/runtime_env.hpp"
#include "core/tensor.hpp"

extern char** environ;

namespace nl {
namespace fs = std::filesystem;
using json = nlohmann::json;

double scaled_lr(const SweepPlan& plan, int batch_size) {
  const double ratio = static_cast<double>(batch_size) / plan.base_batch;
  if (plan.lr_scaling == "linear") return plan.base_lr * ratio;  // Goyal et al.; the GN paper
  if (plan.lr_scaling == "sqrt") return plan.base_lr * std::sqrt(ratio);  // Hoffer et al. (Ghost BN)
  return plan.base_lr;
}

std::string run_name(const std::string& label, int batch_size, int seed, int stat_batch) {
  if (stat_batch > 0) return fmt::format("{}-b{}-sb{}-s{}", label, batch_size, stat_batch, seed);
  return fmt::format("{}-b{}-s{}", label, batch_size, seed);
}

static std::vector<SweepVariant> norm_variants(const std::vector<std::string>& norms) {
  std::vector<SweepVariant> out;
  const auto known = norm_names();
  for (const auto& n : norms) {
    if (std::find(known.begin(), known.end(), n) == known.end())
      throw app::UsageError(fmt::format("sweep: --norms: unknown norm '{}' (valid: {})", n, fmt::join(known, ", ")));
    out.push_back({n, {"--norm", n}});
  }
  return out;
}

std::vector<std::string> sweep_preset_names() {
  return {"quick", "bn-mnist", "input-norm", "ln-batch", "gn-batch", "gn-statbatch", "small-batch-fixes", "bn-noniid", "gn-groups", "ws-batch2",
          "ghost-large-batch", "transformer-deep", "wn", "rnn-norms", "transformer-norms"};
}

// gn-statbatch's recipe, shared by the presets whose runs are compared with (or copied from)
// it: CIFAR-10 CNN at batch 32, SGD lr 0.02 without scaling, 4 epochs, crop + flip, cosine.
static void use_cifar_statbatch_recipe(SweepPlan& p) {
  p.batch_sizes = {32};
  p.lr_scaling = "none";
  p.base_lr = 0.02;
  p.common_args = {"--dataset", "cifar10", "--model", "cnn", "--epochs", "4", "--augment", "--schedule", "cosine",
                   "--eval-every-epoch"};
}

// The papers at CPU scale. Each preset is sized to finish well under an hour on 2 cores;
// where that needs a subset of the data or fewer epochs than the paper, the description says so.
SweepPlan sweep_preset(const std::string& name, const std::string& out_dir) {
  SweepPlan p;
  p.out_dir = out_dir;
  if (name == "quick") {
    // The README's main command. Every run takes the same optimizer steps at batch 32 with the
    // same learning rate; only the number of examples a BatchNorm statistic is computed over
    // changes (--stat-batch 2 or 32: the GN paper's "batch per GPU" inside a batch of 32), so
    // the comparison isolates the statistics and is not confounded by more steps at small batch.
    // Two models, because what BN suffers from is how few values each statistic has: per feature
    // of the MLP, 2 values at statistics batch 2: then x_hat = +-1 whatever the input, and the backward
    // formula dx = rstd/M (M dxhat - sum dxhat - xhat sum dxhat xhat) is 0 for M = 2 (up to eps),
    // so no gradient reaches the layers below; per channel of the CNN, 2 x H x W values.
    p.description = "Headline: BatchNorm with statistics over 2 vs 32 examples, GroupNorm, LayerNorm and no norm, every "
                    "run at optimizer batch 32 with the same lr and steps, on Fashion-MNIST: an MLP (3x128 ReLU, "
                    "3 epochs) and the CNN (2 epochs), 2 seeds.";
    const std::vector<std::string> mlp = {"--model", "mlp", "--width", "128", "--depth", "3", "--activation", "relu",
                                          "--epochs", "3"};
    const std::vector<std::string> cnn = {"--model", "cnn", "--epochs", "2"};
    auto with = [](std::vector<std::string> model, const std::string& norm) {
      model.insert(model.end(), {"--norm", norm});
      return model;
    };
    p.variants = {{"mlp-bn", with(mlp, "bn")}, {"mlp-gn", with(mlp, "gn")},   {"mlp-ln", with(mlp, "ln")},
                  {"mlp-none", with(mlp, "none")}, {"cnn-bn", with(cnn, "bn")}, {"cnn-gn", with(cnn, "gn")}};
    p.batch_sizes = {32};
    p.stat_batches = {2, 32};
    p.seeds = {0, 1};
    p.lr_scaling = "none";
    p.base_lr = 0.02;
    p.common_args = {"--dataset", "fashion-mnist", "--eval-every-epoch"};
  } else if (name == "bn-mnist") {
    p.description = "BN paper, Fig. 1a: MNIST MLP (3x100 sigmoid), with and without BN, also LN and WN; "
                    "batch 60, SGD; 10k steps instead of the paper's 50k.";
    p.variants = norm_variants({"none", "bn", "ln", "wn"});
    p.batch_sizes = {60};
    p.seeds = {0};
    p.lr_scaling = "none";
    p.base_lr = 0.5;
    p.base_batch = 60;
    p.common_args = {"--dataset", "mnist", "--model", "mlp", "--steps", "10000", "--momentum-sgd", "0",
                     "--eval-every-epoch"};
  } else if (name == "input-norm") {
    // docs/story.md, section 1: the inputs standardized, min-max scaled or only divided by 255,
    // in bn-mnist's network without any norm inside (so only the input scaling differs).
    p.description = "Input normalization: MNIST MLP (3x100 sigmoid, no norm), inputs standardized vs min-max vs /255; "
                    "batch 60, SGD lr 0.5, 3 epochs, 3 seeds.";
    for (const char* kind : {"standardize", "minmax", "unit"})
      p.variants.push_back({kind, {"--norm", "none", "--input-norm", kind}});
    p.batch_sizes = {60};
    p.seeds = {0, 1, 2};
    p.lr_scaling = "none";
    p.base_lr = 0.5;
    p.base_batch = 60;
    p.common_args = {"--dataset", "mnist", "--model", "mlp", "--epochs", "3", "--momentum-sgd", "0", "--eval-every-epoch"};
  } else if (name == "ln-batch") {
    p.description = "LN paper, Fig. 6: MNIST MLP (3x100 sigmoid) with Adam at batch 128 and 4, BN vs LN (3 epochs).";
    p.variants = norm_variants({"bn", "ln"});
    p.batch_sizes = {4, 128};
    p.seeds = {0};
    p.lr_scaling = "none";
    p.base_lr = 1e-3;
    p.common_args = {"--dataset", "mnist", "--model", "mlp", "--optimizer", "adam", "--epochs", "3", "--eval-every-epoch"};
  } else if (name == "gn-batch") {
    // The GN paper's protocol (Wu & He 2018, Fig. 1 / Table 2): the batch per step is B, the
    // learning rate is proportional to B (0.02 at 32 for this CNN, as 0.1 at 32 for their
    // ResNet), the same epochs for every B, long enough to converge (cosine decay to 0, crop +
    // flip). Cost: 75 runs of 10 epochs over 50k images, measured on one AMD EPYC (Zen 4)
    // thread: 550-580 s at batch 32, 730-830 s at batch 2: ~11 core-hours; run it in parts
    // (--norms/--batch-sizes/--seeds fill one directory), commit finished runs with
    // export-results and continue with --results.
    p.description = "GN paper, Fig. 1: CIFAR-10 CNN with BN, GN, LN, IN and no norm at batch 2..32, lr = 0.02 x B/32, "
                    "10 epochs for every batch size (full training set, crop + flip, cosine decay), 3 seeds.";
    p.variants = norm_variants({"bn", "gn", "ln", "in", "none"});
    p.batch_sizes = {2, 4, 8, 16, 32};
    p.seeds = {0, 1, 2};
    p.base_lr = 0.02;
    p.common_args = {"--dataset", "cifar10", "--model", "cnn", "--epochs", "10", "--augment", "--schedule", "cosine",
                     "--eval-every-epoch"};
  } else if (name == "gn-statbatch") {
    // The same question with the optimizer held fixed: batch 32 for every run, BN's statistics
    // over groups of b examples (the GN paper's "batch per GPU" inside a larger batch; the Batch
    // Renorm paper's micro-batch experiment). GN does not depend on b (tested), so it runs once.
    // 4 epochs (cosine to 0): the measurement without schedule showed the gap after 4.
    // Cost: 18 runs of ~400 s on one quiet thread: ~2 core-hours.
    p.description = "GN paper's per-GPU batch: CIFAR-10 CNN at batch 32, BN statistics over 2, 4, 8, 16, 32 examples, "
                    "GN as reference; lr 0.02, 4 epochs, crop + flip, cosine decay, 3 seeds.";
    use_cifar_statbatch_recipe(p);
    p.variants = norm_variants({"bn", "gn"});
    p.stat_batches = {2, 4, 8, 16, 32};
    p.seeds = {0, 1, 2};
  } else if (name == "small-batch-fixes" || name == "bn-noniid") {
    // Where BatchNorm breaks (gn-statbatch: statistics over 2 examples inside a batch of 32 on
    // the CIFAR-10 CNN), the fixes, on exactly gn-statbatch's recipe, so its bn (sb2) and gn runs
    // are these presets' own: copied into results/small-batch-fixes, not run again.
    // Batch Renorm ramps r_max 1 -> 3 and d_max 0 -> 5 over its first 1000 steps (of 6,248), as the
    // paper starts from plain BN. bn-m0.01: running statistics averaging ~100 groups instead of
    // ~10 (one update per group of 2: PyTorch's 0.1 remembers about 20 images). evonorm-b0 is not
    // here: its variance is over the whole batch (it refuses --stat-batch), so it does not see 2.
    use_cifar_statbatch_recipe(p);
    p.seeds = {0, 1, 2};
    const std::vector<std::string> brn = {"--norm", "brn", "--renorm-warmup", "1000"};
    if (name == "small-batch-fixes") {
      p.description = "Small-batch fixes where BN breaks: CIFAR-10 CNN at batch 32 with statistics over 2 examples "
                      "(gn-statbatch's recipe): BN (momentum 0.1 and 0.01), Batch Renorm, Ghost BN (2), GN, WS+GN, "
                      "FRN, EvoNorm-S0; 4 epochs, crop + flip, cosine, 3 seeds.";
      p.variants = {{"bn", {"--norm", "bn"}},   {"bn-m0.01", {"--norm", "bn", "--momentum", "0.01"}},
                    {"brn", brn},               {"gbn", {"--norm", "gbn", "--ghost-batch", "2"}},
                    {"gn", {"--norm", "gn"}},   {"ws", {"--norm", "ws"}},
                    {"frn", {"--norm", "frn"}}, {"evonorm-s0", {"--norm", "evonorm-s0"}}};
      p.stat_batches = {2};
    } else {
      // Batch Renorm paper, Sec. 4.3: batches that are not a fair sample. Every batch of 32
      // holds 5 of CIFAR-10's 10 classes; BN and BRN normalize over the whole batch, so at training
      // their statistics come from 5 classes while at test they are the population's. (With 2
      // classes per batch, BN and GN alike stay at chance for thousands of steps at this lr
      // while no norm trains: docs/reproductions.md, bn-noniid; not a test of BN alone.)
      p.description = "Non-i.i.d. batches (Batch Renorm paper): CIFAR-10 CNN at batch 32, every batch from 5 classes; "
                      "BN vs Batch Renorm vs GN, statistics over the whole batch; 4 epochs, crop + flip, cosine, 3 seeds.";
      p.variants = {{"bn", {"--norm", "bn"}}, {"brn", brn}, {"gn", {"--norm", "gn"}}};
      p.common_args.insert(p.common_args.end(), {"--classes-per-batch", "5"});
    }
  } else if (name == "gn-groups") {
    // GN paper, Table 3 (groups) and the WS paper (WS + GN at batch 2): gn-statbatch's recipe, so
    // gn (8 groups) and BN at 32 are its runs. G must divide every block's channels (32, 64, 128):
    // G = 1 is LayerNorm over (C, H, W), G = 32 is one channel per group in the first block, and
    // InstanceNorm (G = C in every block) ends the row.
    p.description = "GN paper, Table 3: CIFAR-10 CNN at batch 32 with GN over 1, 2, 4, 8, 16, 32 groups and IN "
                    "(gn-statbatch's recipe: lr 0.02, 4 epochs, crop + flip, cosine), 1 seed.";
    p.variants = {{"gn-g1", {"--norm", "gn", "--groups", "1"}},   {"gn-g2", {"--norm", "gn", "--groups", "2"}},
                  {"gn-g4", {"--norm", "gn", "--groups", "4"}},   {"gn", {"--norm", "gn", "--groups", "8"}},
                  {"gn-g16", {"--norm", "gn", "--groups", "16"}}, {"gn-g32", {"--norm", "gn", "--groups", "32"}},
                  {"in", {"--norm", "in"}}};
    use_cifar_statbatch_recipe(p);
    p.seeds = {0};
  } else if (name == "ws-batch2") {
    // The WS paper's claim at micro-batch: WS + GN at a true batch of 2 (lr = 0.02 x 2/32, the
    // same 4 epochs: 100k steps) against GN alone there and BN at 32 (gn-statbatch's bn sb32).
    p.description = "WS paper: CIFAR-10 CNN at a true batch of 2 with GN and WS + GN (lr 0.02 x 2/32, 4 epochs, crop + "
                    "flip, cosine), against BN at batch 32 from gn-statbatch; 1 seed.";
    use_cifar_statbatch_recipe(p);
    p.variants = norm_variants({"gn", "ws"});
    p.batch_sizes = {2};
    p.seeds = {0};
    p.lr_scaling = "linear";
    p.base_batch = 32;
  } else if (name == "ghost-large-batch") {
    // Hoffer et al. 2017 ("Train longer, generalize better"): a large batch generalizes worse at
    // the same epochs; Ghost BN with 128-example statistics recovers part of the gap. Their MNIST
    // model is Keskar et al.'s F1-like MLP (fully connected, BN, ReLU); lr scaled with sqrt(B/128).
    p.description = "Ghost BN paper: MNIST MLP (2 x 512 ReLU, BN), batch 128 against 4096 at the same 10 epochs, lr 0.1 x "
                    "sqrt(B/128), Ghost BN with ghost batch 128 at 4096; 3 seeds.";
    const std::vector<std::string> mlp = {"--model", "mlp", "--width", "512", "--depth", "2", "--activation", "relu"};
    auto with = [&](std::vector<std::string> extra) {
      std::vector<std::string> args = mlp;
      args.insert(args.end(), extra.begin(), extra.end());
      return args;
    };
    p.variants = {{"bn", with({"--norm", "bn"})}, {"gbn", with({"--norm", "gbn", "--ghost-batch", "128"})}};
    p.batch_sizes = {128, 4096};
    p.seeds = {0, 1, 2};
    p.lr_scaling = "sqrt";
    p.base_lr = 0.1;
    p.base_batch = 128;
    p.common_args = {"--dataset", "mnist", "--epochs", "10", "--eval-every-epoch"};
  } else if (name == "transformer-deep") {
    // Xiong et al. 2020 at a depth where Post-LN's problem shows: 6 blocks. At the higher
    // learning rate (2e-3), Post-LN without warm-up should diverge or lag and Pre-LN should not
    // need warm-up; then LN vs RMSNorm vs BN (per feature over the batch's tokens) at Pre-LN.
    p.description = "Transformer norms, 6 blocks (d_model 64, context 128, batch 32, 2000 steps, AdamW lr 2e-3): Post-LN "
                    "with and without warm-up, Pre-LN with and without, Pre-RMSNorm, Pre-BN, Pre-PowerNorm.";
    p.variants = {{"post-ln", {"--norm", "ln", "--post-ln", "--warmup-steps", "300"}},
                  {"post-ln-nowarmup", {"--norm", "ln", "--post-ln", "--warmup-steps", "0"}},
                  {"pre-ln", {"--norm", "ln", "--pre-ln", "--warmup-steps", "300"}},
                  {"pre-ln-nowarmup", {"--norm", "ln", "--pre-ln", "--warmup-steps", "0"}},
                  {"pre-rms-nowarmup", {"--norm", "rms", "--pre-ln", "--warmup-steps", "0"}},
                  {"pre-bn-nowarmup", {"--norm", "bn", "--pre-ln", "--warmup-steps", "0"}},
                  // PowerNorm (Shen et al. 2020), proposed for where BN fails in Transformers. Its own
                  // warm-up (steps normalized by the batch's quadratic mean before the running one)
                  // defaults to the official 10000, longer than these 2000 steps, so the running
                  // statistic would never be used: 500 (a quarter of the run) makes it the PN of the
                  // paper for the last 1500 steps. No learning-rate warm-up, as the other Pre- runs.
                  {"pre-pn-nowarmup", {"--norm", "pn", "--pn-warmup", "500", "--pre-ln", "--warmup-steps", "0"}}};
    p.batch_sizes = {32};
    p.seeds = {0};
    p.lr_scaling = "none";
    p.base_lr = 2e-3;
    p.eval_modes = false;
    p.common_args = {"--dataset", "tinyshakespeare", "--model", "transformer", "--layers", "6", "--d-model", "64",
                     "--context", "128", "--optimizer", "adamw", "--steps", "2000"};
  } else if (name == "wn") {
    p.description = "WeightNorm paper: WN with data-dependent init, WN + mean-only BN, BN and no norm on the CIFAR-10 "
                    "CNN at batch 32 (2 epochs over a 20k subset), with time per step.";
    p.variants = {{"wn", {"--norm", "wn", "--wn-data-init"}},
                  {"wn+mobn", {"--norm", "wn", "--wn-mean-only-bn", "--wn-data-init"}},
                  {"bn", {"--norm", "bn"}},
                  {"none", {"--norm", "none"}}};
    p.batch_sizes = {32};
    p.seeds = {0};
    p.base_lr = 0.02;
    p.common_args = {"--dataset", "cifar10", "--model", "cnn", "--epochs", "2", "--subset", "20000"};
  } else if (name == "rnn-norms") {
    p.description = "Char-LSTM on Tiny Shakespeare: no norm, LayerNorm-LSTM and recurrent BN at batch 64 and 4 "
                    "(500 steps, Adam; the LN and BN cells run a per-step path 3-5x slower than the fused plain LSTM).";
    p.variants = norm_variants({"none", "ln", "bn"});
    p.batch_sizes = {4, 64};
    p.seeds = {0};
    p.lr_scaling = "none";
    p.base_lr = 2e-3;
    p.eval_modes = false;
    p.common_args = {"--dataset", "tinyshakespeare", "--model", "lstm", "--optimizer", "adam", "--steps", "500"};
  } else if (name == "transformer-norms") {
    p.description = "Char-Transformer on Tiny Shakespeare: pre-LN vs post-LN, with and without warm-up, LayerNorm vs "
                    "RMSNorm (batch 16, 2000 steps, AdamW lr 1e-3): loss vs steps and vs wall-clock time.";
    p.variants = {{"pre-ln", {"--norm", "ln", "--pre-ln", "--warmup-steps", "300"}},
                  {"post-ln", {"--norm", "ln", "--post-ln", "--warmup-steps", "300"}},
                  {"post-ln-nowarmup", {"--norm", "ln", "--post-ln", "--warmup-steps", "0"}},
                  {"pre-rms", {"--norm", "rms", "--pre-ln", "--warmup-steps", "300"}}};
    p.batch_sizes = {16};
    p.seeds = {0};
    p.lr_scaling = "none";
    p.base_lr = 1e-3;
    p.eval_modes = false;
    p.common_args = {"--dataset", "tinyshakespeare", "--model", "transformer", "--optimizer", "adamw",
                     "--steps", "2000"};
  } else {
    std::string names;
    for (const auto& n : sweep_preset_names()) names += (names.empty() ? "" : ", ") + n;
    throw app::UsageError(fmt::format("sweep: unknown preset '{}' (valid: {})", name, names));
  }
  return p;
}

// ----------------------------------------------------------------------------- run bookkeeping

static std::string norm_of(const SweepVariant& v) {
  for (size_t i = 0; i + 1 < v.train_args.size(); ++i)
    if (v.train_args[i] == "--norm") return v.train_args[i + 1];
  return "";
}
static bool has_arg(const SweepVariant& v, const char* flag) {
  return std::find(v.train_args.begin(), v.train_args.end(), flag) != v.train_args.end();
}

static bool uses_batch_statistics(const SweepVariant& v) {
  const std::string norm = norm_of(v);
  const auto names = norm_names();  // an unknown name is refused by train, naming the valid ones
  if (std::find(names.begin(), names.end(), norm) == names.end()) return false;
  return norm_info(norm).batch_stat_norm || (norm == "wn" && has_arg(v, "--wn-mean-only-bn"));
}

// The variants `normlab train --stat-batch` applies to (the registry's grouped ones). gbn is
// BatchNorm whose statistics batch is its --ghost-batch (train refuses a second one).
static bool takes_stat_batch(const SweepVariant& v) {
  return uses_batch_statistics(v) && norm_info(norm_of(v)).stat_batch == NormInfo::StatBatch::grouped;
}

std::vector<PlannedRun> planned_runs(const SweepPlan& plan) {
  std::vector<PlannedRun> runs;
  auto add = [&](const SweepVariant& v, int b, int seed, int stat_batch) {
    PlannedRun r;
    r.name = run_name(v.label, b, seed, stat_batch);
    r.label = v.label;
    r.batch_size = b, r.seed = seed, r.stat_batch = stat_batch;
    r.batch_statistics = uses_batch_statistics(v);
    r.lr = scaled_lr(plan, b);
    r.train_args = plan.common_args;
    r.train_args.insert(r.train_args.end(), v.train_args.begin(), v.train_args.end());
    if (norm_of(v) == "gbn") {  // its statistics batch is its ghost batch (default, or the last one given)
      r.ghost_batch = static_cast<int>(NormOptions{}.ghost_batch);
      for (size_t i = 0; i + 1 < r.train_args.size(); ++i)
        if (r.train_args[i] == "--ghost-batch") r.ghost_batch = std::stoi(r.train_args[i + 1]);
    }
    if (stat_batch > 0) r.train_args.insert(r.train_args.end(), {"--stat-batch", std::to_string(stat_batch)});
    for (const auto& a : {std::string("--batch-size"), std::to_string(b), std::string("--seed"), std::to_string(seed),
                          std::string("--lr"), fmt::format("{:g}", r.lr), std::string("--threads"),
                          std::to_string(plan.threads), std::string("--out"), (fs::path(plan.out_dir) / r.name).string()})
      r.train_args.push_back(a);
    runs.push_back(std::move(r));
  };
  // Small batches first within each seed: they are the slow, interesting ones.
  for (int seed : plan.seeds)
    for (int b : plan.batch_sizes)
      for (const auto& v : plan.variants) {
        if (plan.stat_batches.empty() || !takes_stat_batch(v)) {
          add(v, b, seed, 0);
          continue;
        }
        for (int sb : plan.stat_batches)
          if (sb <= b) add(v, b, seed, sb);  // a statistics batch larger than the batch does not exist
      }
  return runs;
}

nlohmann::json plan_to_json(const SweepPlan& plan) {
  json j = {{"description", plan.description}, {"batch_sizes", plan.batch_sizes}, {"seeds", plan.seeds},
            {"lr_scaling", plan.lr_scaling}, {"base_lr", plan.base_lr}, {"base_batch", plan.base_batch},
            {"common_args", plan.common_args}, {"eval_modes", plan.eval_modes}};
  if (!plan.stat_batches.empty()) j["stat_batches"] = plan.stat_batches;
  for (const auto& v : plan.variants) j["variants"].push_back({{"label", v.label}, {"train_args", v.train_args}});
  return j;
}

SweepPlan plan_from_json(const nlohmann::json& j, const std::string& out_dir) {
  SweepPlan plan;
  plan.out_dir = out_dir;
  try {
    for (const auto& v : j.at("variants"))
      plan.variants.push_back({v.at("label"), v.value("train_args", std::vector<std::string>{})});
    plan.batch_sizes = j.at("batch_sizes").get<std::vector<int>>();
    plan.seeds = j.at("seeds").get<std::vector<int>>();
    plan.stat_batches = j.value("stat_batches", std::vector<int>{});
    plan.lr_scaling = j.value("lr_scaling", plan.lr_scaling);
    plan.base_lr = j.value("base_lr", plan.base_lr);
    plan.base_batch = j.value("base_batch", plan.base_batch);
    plan.eval_modes = j.value("eval_modes", plan.eval_modes);
    plan.common_args = j.value("common_args", std::vector<std::string>{});
    plan.description = j.value("description", "");
  } catch (const json::exception& e) {
    throw Error(fmt::format("sweep.json of {} is incomplete or malformed: {}", out_dir, e.what()));
  }
  return plan;
}

// Train flags are "--flag value" pairs or lone "--flag"s: args[i] takes args[i + 1] as its
// value unless that is the next flag.
static bool flag_has_value(const std::vector<std::string>& args, size_t i) {
  return i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0;
}

// Train flags as "--flag value" pairs (a flag without a value pairs with ""), sorted, without
// --data-dir and with machine paths cut: what makes two argument lists train the same.
static std::vector<std::pair<std::string, std::string>> recipe_of(const std::vector<std::string>& args) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (size_t i = 0; i < args.size(); ++i) {
    const bool has_value = flag_has_value(args, i);
    std::string value = has_value ? cut_machine_paths(args[i + 1]) : "";
    if (args[i] != "--data-dir") pairs.emplace_back(args[i], std::move(value));
    i += has_value;
  }
  std::sort(pairs.begin(), pairs.end());
  return pairs;
}

static std::vector<int> sorted_union(std::vector<int> a, const std::vector<int>& b) {
  a.insert(a.end(), b.begin(), b.end());
  std::sort(a.begin(), a.end());
  a.erase(std::unique(a.begin(), a.end()), a.end());
  return a;
}

SweepPlan merge_plans(const SweepPlan& existing, const SweepPlan& added) {
  auto refuse_unless = [&](bool same, const std::string& what) {
    if (!same)
      throw app::UsageError(fmt::format("sweep: {} already holds a sweep that trains differently ({}); use another "
                                        "--out, or the flags of the sweep already there",
                                        existing.out_dir, what));
  };
  refuse_unless(recipe_of(existing.common_args) == recipe_of(added.common_args),
                fmt::format("its train flags are '{}', these are '{}'", fmt::join(existing.common_args, " "),
                            fmt::join(added.common_args, " ")));
  refuse_unless(existing.lr_scaling == added.lr_scaling && existing.base_lr == added.base_lr &&
                    existing.base_batch == added.base_batch,
                fmt::format("its lr is {:g} x B/{} ({} scaling), this one {:g} x B/{} ({})", existing.base_lr,
                            existing.base_batch, existing.lr_scaling, added.base_lr, added.base_batch, added.lr_scaling));
  refuse_unless(existing.stat_batches.empty() == added.stat_batches.empty(),
                existing.stat_batches.empty() ? "it has no statistics-batch axis, this one has --stat-batch-sizes"
                                              : "it has a statistics-batch axis, this one has no --stat-batch-sizes");
  SweepPlan merged = existing;
  for (const SweepVariant& v : added.variants) {
    auto same_label = std::find_if(merged.variants.begin(), merged.variants.end(),
                                   [&](const SweepVariant& m) { return m.label == v.label; });
    if (same_label == merged.variants.end()) {
      merged.variants.push_back(v);
      continue;
    }
    refuse_unless(recipe_of(same_label->train_args) == recipe_of(v.train_args),
                  fmt::format("its variant '{}' is '{}', this one '{}'", v.label, fmt::join(same_label->train_args, " "),
                              fmt::join(v.train_args, " ")));
  }
  merged.batch_sizes = sorted_union(existing.batch_sizes, added.batch_sizes);
  merged.seeds = sorted_union(existing.seeds, added.seeds);
  merged.stat_batches = sorted_union(existing.stat_batches, added.stat_batches);
  merged.jobs = added.jobs, merged.threads = added.threads;
  merged.results_dir = added.results_dir;
  merged.eval_modes = added.eval_modes;
  return merged;
}

json read_json_or_null(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return nullptr;
  try {
    return json::parse(in);
  } catch (const std::exception&) {
    return nullptr;  // a half-written file counts as absent
  }
}

// "ok" / "diverged ..." are final; anything else (missing, "interrupted") means run it (again).
bool run_finished(const fs::path& run_dir) {
  json s = read_json_or_null(run_dir / "summary.json");
  if (!s.is_object() || !s.contains("status") || !s["status"].is_string()) return false;
  const std::string status = s["status"];
  return status == "ok" || status.rfind("diverged", 0) == 0;
}

fs::path run_location(const SweepPlan& plan, const std::string& name) {
  const fs::path out = fs::path(plan.out_dir) / name;
  if (run_finished(out) || plan.results_dir.empty()) return out;
  const fs::path committed = fs::path(plan.results_dir) / name;
  return run_finished(committed) ? committed : out;
}

static std::string self_exe() { return fs::read_symlink("/proc/self/exe").string(); }

// extra_env: entries added to this process's environment for the child ("NAME=value").
static pid_t spawn(const std::vector<std::string>& args, const fs::path& log_path,
                   const std::vector<std::string>& extra_env) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // Under `mpirun normlab sweep` each rank is a shard, not an MPI job to join: without Open
  // MPI's variables a run is an ordinary single process (else it would try to join as rank r).
  // A wait policy normlab chose for the sweep is not passed on either (see extra_env).
  std::vector<char*> env;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "OMPI_", 5) != 0 && std::strncmp(*e, "PMIX_", 5) != 0 && !nl::is_normlab_wait_policy_entry(*e))
      env.push_back(*e);
  for (const auto& e : extra_env) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  NL_CHECK(rc == 0, "sweep: could not start ", args[0], ": ", std::strerror(rc));
  return pid;
}

static std::string csv_number(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return "";
  return fmt::format("{:.6g}", j[key].get<double>());
}

namespace {
// An exclusive flock on OUT/.results.lock for as long as it lives (none if the file cannot be
// opened: then shards may race, as before). Shards of one sweep rewrite results.csv side by
// side, each from every run's summary.json as it reads them: unserialized, a shard that read
// before another's last run finished could rename its older table over the newer one.
class ResultsLock {
 public:
  explicit ResultsLock(const fs::path& dir) : fd_(::open((dir / ".results.lock").c_str(), O_RDWR | O_CREAT, 0644)) {
    if (fd_ >= 0) ::flock(fd_, LOCK_EX);
  }
  ~ResultsLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
  }
  ResultsLock(const ResultsLock&) = delete;
  ResultsLock& operator=(const ResultsLock&) = delete;

 private:
  int fd_;
};
}  // namespace

// Rewrites OUT/results.csv from the run directories (the directories are the truth).
// stat_batch is the last column so that readers of the older columns by position still work.
void write_results_csv(const SweepPlan& plan, const std::vector<PlannedRun>& runs) {
  const fs::path out = fs::path(plan.out_dir) / "results.csv";
  const ResultsLock lock(plan.out_dir);
  const fs::path tmp = fmt::format("{}.tmp.{}", out.string(), getpid());
  {
    std::ofstream f(tmp);
    f << "variant,batch_size,seed,lr,status,test_accuracy,test_error,test_loss,final_train_loss,steps,epochs,"
         "seconds,ms_per_step,items_per_second,peak_rss_mb,acc_running_stats,acc_batch_stats,acc_precise_bn,"
         "stat_batch\n";
    for (const auto& r : runs) {
      const fs::path dir = run_location(plan, r.name);
      json s = read_json_or_null(dir / "summary.json");
      json e = read_json_or_null(dir / "eval_modes.json");
      std::string status = s.is_object() && s.contains("status") ? s["status"].get<std::string>() : "missing";
      std::string error = "";
      if (s.is_object() && s.contains("test_accuracy") && s["test_accuracy"].is_number())
        error = fmt::format("{:.6g}", 1.0 - s["test_accuracy"].get<double>());
      std::string ms_per_step;
      if (s.is_object() && s.contains("seconds") && s.contains("steps") && s["steps"].is_number() &&
          s["steps"].get<double>() > 0)
        ms_per_step = fmt::format("{:.4g}", 1000.0 * s["seconds"].get<double>() / s["steps"].get<double>());
      std::string items = csv_number(s, "images_per_second");
      if (items.empty()) items = csv_number(s, "tokens_per_second");
      f << fmt::format("{},{},{},{:g},\"{}\",{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", r.label, r.batch_size, r.seed,
                       r.lr, status, csv_number(s, "test_accuracy"), error, csv_number(s, "test_loss"),
                       csv_number(s, "final_train_loss"), csv_number(s, "steps"), csv_number(s, "epochs"),
                       csv_number(s, "seconds"), ms_per_step, items, csv_number(s, "peak_rss_mb"),
                       csv_number(e, "running_stats_accuracy"), csv_number(e, "batch_stats_accuracy"),
                       csv_number(e, "precise_bn_accuracy"), r.effective_stat_batch());
    }
  }
  fs::rename(tmp, out);
}

static std::string format_duration(double seconds) {
  const int s = static_cast<int>(seconds);
  return s >= 3600 ? fmt::format("{}h{:02}m", s / 3600, s / 60 % 60) : fmt::format("{}m{:02}s", s / 60, s % 60);
}

static int run_sweep(const SweepPlan& plan, const app::Shard& shard, double claim_lease) {
  // Mistakes in the plan are usage errors (exit code 2), found before anything runs.
  auto usage_check = [](bool ok, const std::string& message) {
    if (!ok) throw app::UsageError(message);
  };
  usage_check(!plan.variants.empty() && !plan.batch_sizes.empty() && !plan.seeds.empty(),
              "sweep: need at least one norm (variant), batch size and seed");
  for (int b : plan.batch_sizes) usage_check(b > 0, fmt::format("sweep: --batch-sizes must be positive, got {}", b));
  usage_check(plan.jobs >= 1 && plan.threads >= 1, "sweep: --jobs and --threads must be >= 1");
  for (int sb : plan.stat_batches)
    usage_check(sb >= 2, fmt::format("sweep: --stat-batch-sizes must be >= 2 (statistics need two examples), got {}", sb));
  usage_check(plan.results_dir.empty() || fs::is_directory(plan.results_dir),
              fmt::format("sweep: --results {} is not a directory", plan.results_dir));
  fs::create_directories(fs::path(plan.out_dir) / "logs");
  const std::vector<PlannedRun> runs = planned_runs(plan);
  // OUT may hold earlier parts of the same sweep (other norms, seeds, batch sizes): sweep.json
  // and results.csv cover them all, so that export-results and report see every part.
  SweepPlan whole = plan;
  const json on_disk = read_json_or_null(fs::path(plan.out_dir) / "sweep.json");
  if (on_disk.is_object()) whole = merge_plans(plan_from_json(on_disk, plan.out_dir), plan);
  const std::vector<PlannedRun> all_runs = planned_runs(whole);
  app::write_json_atomic((fs::path(plan.out_dir) / "sweep.json").string(), plan_to_json(whole));
  app::ClaimBoard claims(plan.out_dir, claim_lease);
  const std::string shard_label = shard.count > 1 ? fmt::format("shard {}/{}", shard.index, shard.count) : "";
  claims.set_shard_label(shard_label);
  const std::string exe = self_exe();
  // A job is a queue of commands run one after the other (train, then eval for BN-family runs).
  struct Job {
    const PlannedRun* run;
    std::vector<std::vector<std::string>> commands;
  };
  std::vector<Job> pending;
  int already_done = 0, committed = 0, mine = 0, held_elsewhere = 0;
  auto done = [&](const PlannedRun& r) {
    const fs::path dir = fs::path(plan.out_dir) / r.name;
    return run_finished(dir) && (!r.batch_statistics || !plan.eval_modes || fs::exists(dir / "eval_modes.json"));
  };
  for (size_t i = 0; i < runs.size(); ++i) {
    const PlannedRun& r = runs[i];
    if (!shard.owns(i)) continue;
    ++mine;
    const fs::path dir = fs::path(plan.out_dir) / r.name;
    if (run_location(plan, r.name) != dir) {  // finished in --results (no model there to evaluate)
      ++already_done, ++committed;
      continue;
    }
    if (done(r)) {
      ++already_done;
      continue;
    }
    std::string holder;
    if (!claims.try_claim(r.name, &holder)) {
      ++held_elsewhere;
      fmt::print(stderr, "[sweep] {} is being run by {}; skipped\n", r.name, holder);
      continue;
    }
    if (done(r)) {  // its previous holder finished it between our two looks
      claims.release(r.name);
      ++already_done;
      continue;
    }
    const bool trained = run_finished(dir);
    Job job{&r, {}};
    if (!trained) {
      std::vector<std::string> cmd = {exe, "train"};
      if (fs::exists(dir / "train_state.safetensors")) {
        cmd.insert(cmd.end(), {"--resume", dir.string()});  // interrupted: continue from its checkpoint
      } else {
        fs::remove_all(dir);  // interrupted before any checkpoint: start clean
        cmd.insert(cmd.end(), r.train_args.begin(), r.train_args.end());
      }
      job.commands.push_back(cmd);
    }
    if (r.batch_statistics && plan.eval_modes) job.commands.push_back({exe, "eval", "--run", dir.string()});
    pending.push_back(std::move(job));
  }
  const bool tty = isatty(STDERR_FILENO);
  const auto t0 = std::chrono::steady_clock::now();
  std::map<pid_t, Job> running;
  size_t next = 0;
  int finished = 0, failed = 0;
  auto progress = [&](const std::string& event) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const int total = static_cast<int>(pending.size());
    std::string eta = finished > 0 ? format_duration(elapsed / finished * (total - finished)) : "?";
    std::string line = fmt::format("[sweep] {}/{} runs done ({} already), {} running, {} failed | {} elapsed, ETA {}",
                                   finished + already_done, mine, already_done, running.size(), failed,
                                   format_duration(elapsed), eta);
    if (tty) fmt::print(stderr, "\r\033[K{}{}", line, event.empty() ? "" : "\n");
    if (!event.empty()) fmt::print(stderr, "{}{}\n", event, tty ? "" : "\n" + line);
  };
  // Runs side by side (several jobs, or shards of one machine) would each see the others idle
  // as they start together and spin against each other: pin them to passive. A lone run
  // chooses for itself (core/runtime_env.hpp); the user's own choice passes through untouched.
  const std::vector<std::string> wait_env =
      !nl::wait_policy_env().set_by_user() && (plan.jobs > 1 || shard.count > 1)
          ? nl::passive_wait_policy_env(plan.jobs > 1 ? fmt::format("a sweep running {} jobs at once", plan.jobs)
                                                     : fmt::format("a sweep in {} shards", shard.count))
          : std::vector<std::string>{};
  auto start_next_command = [&](Job job) {
    const auto cmd = job.commands.front();
    job.commands.erase(job.commands.begin());
    pid_t pid = spawn(cmd, fs::path(plan.out_dir) / "logs" / (job.run->name + ".log"), wait_env);
    running.emplace(pid, std::move(job));
  };
  if (shard.count > 1)
    fmt::print(stderr, "[sweep] {} (from {}): {} of the plan's {} runs\n", shard_label, shard.source, mine, runs.size());
  fmt::print(stderr, "[sweep] {} runs in {} ({} already finished{}, {} held by other processes), {} jobs x {} threads\n",
             mine, plan.out_dir, already_done,
             committed ? fmt::format(", {} of them in {}", committed, plan.results_dir) : "", held_elsewhere, plan.jobs,
             plan.threads);
  while (next < pending.size() || !running.empty()) {
    while (static_cast<int>(running.size()) < plan.jobs && next < pending.size()) start_next_command(pending[next++]);
    progress("");
    int wstatus = 0;
    pid_t pid = waitpid(-1, &wstatus, 0);
    if (pid < 0) break;
    auto it = running.find(pid);
    if (it == running.end()) continue;
    Job job = std::move(it->second);
    running.erase(it);
    const int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    const fs::path dir = fs::path(plan.out_dir) / job.run->name;
    json s = read_json_or_null(dir / "summary.json");
    const std::string status = s.is_object() && s.contains("status") ? s["status"].get<std::string>() : "";
    if (code != 0 && status.rfind("diverged", 0) != 0) {
      ++failed;
      ++finished;
      progress(fmt::format("[sweep] {} failed (exit {}); see {}/logs/{}.log", job.run->name, code, plan.out_dir,
                           job.run->name));
    } else if (!job.commands.empty() && status == "ok") {
      start_next_command(std::move(job));  // trained fine: now its eval (still claimed)
      continue;
    } else {
      ++finished;
      std::string acc = s.is_object() && s.contains("test_accuracy") && s["test_accuracy"].is_number()
                            ? fmt::format("test acc {:.2f}%", 100.0 * s["test_accuracy"].get<double>())
                            : "";
      progress(fmt::format("[sweep] {}: {} {}", job.run->name, status.empty() ? "done" : status, acc));
    }
    claims.release(job.run->name);  // finished or failed: a later sweep may retry a failed run
    write_results_csv(whole, all_runs);
  }
  write_results_csv(whole, all_runs);
  fmt::print(stderr, "[sweep] results: {}/results.csv  (then: normlab report {})\n", plan.out_dir, plan.out_dir);
  return failed == 0 ? 0 : 1;
}

// Train flags are "--flag value" pairs; a flag given twice would be an error in `train`, so a
// user's flag replaces the preset's.
static void remove_train_arg(std::vector<std::string>& args, const std::string& flag) {
  for (size_t i = 0; i < args.size(); ++i)
    if (args[i] == flag) {
      const bool has_value = flag_has_value(args, i);
      args.erase(args.begin() + i, args.begin() + i + (has_value ? 2 : 1));
      return;
    }
}
static void set_train_arg(std::vector<std::string>& args, const std::string& flag, const std::string& value) {
  remove_train_arg(args, flag);
  args.push_back(flag);
  args.push_back(value);
}

static std::vector<int> parse_int_list(const std::string& s, const char* flag) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      out.push_back(std::stoi(item, &used));
      NL_CHECK(used == item.size(), "");
    } catch (const std::exception&) {
      throw app::UsageError(fmt::format("sweep: {} expects comma-separated integers, got '{}'", flag, s));
    }
  }
  return out;
}

static std::vector<std::string> parse_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

namespace {

struct SweepArgs {  // the flags as given; empty strings = not given
  std::string preset, out, model = app::kDefaultModel, dataset = app::kDefaultDataset, norms = "bn,gn,ln,in,none",
                           batch_sizes = "2,4,8,16,32,64", seeds = "0", lr_scaling = "linear";
  double base_lr = app::kDefaultLr;
  int base_batch = static_cast<int>(app::kDefaultBatchSize);
  int jobs = 2, threads = 1;  // runs are processes side by side: one thread each scales best on small models
  std::string epochs, steps, subset, data_dir, stat_batch_sizes, results_dir;
  bool no_eval_modes = false;
  std::string shard_spec;  // "" = from SLURM_ARRAY_TASK_ID/COUNT or the Open MPI rank/size
  double claim_lease = 300;
};

// The plan from the flags: a preset (flags given explicitly override it) or the flags alone.
SweepPlan plan_from_args(const SweepArgs& a, const CLI::App& sub) {
  SweepPlan plan;
  if (!a.preset.empty()) {
    plan = sweep_preset(a.preset, a.out);
  } else {
    plan.out_dir = a.out;
    plan.variants = norm_variants(parse_list(a.norms));
    plan.batch_sizes = parse_int_list(a.batch_sizes, "--batch-sizes");
    plan.common_args = {"--model", a.model, "--dataset", a.dataset};
    if (!a.epochs.empty() && !a.steps.empty()) throw app::UsageError("sweep: give --epochs or --steps, not both");
    plan.lr_scaling = a.lr_scaling;
    plan.base_lr = a.base_lr;
    plan.base_batch = a.base_batch;
    plan.description = fmt::format("{} on {}: norms {} at batch sizes {}", a.model, a.dataset, a.norms, a.batch_sizes);
  }
  auto given = [&](const char* flag) { return sub.get_option(flag)->count() > 0; };
  if (given("--seeds") || a.preset.empty()) plan.seeds = parse_int_list(a.seeds, "--seeds");
  if (given("--stat-batch-sizes")) plan.stat_batches = parse_int_list(a.stat_batch_sizes, "--stat-batch-sizes");
  plan.results_dir = a.results_dir;
  if (!a.preset.empty()) {
    // A flag given with a preset overrides it, as --norms or --seeds do; where the preset sets it
    // per variant (quick's --model), an override would be silently lost, so it is refused.
    auto override_train_flag = [&](const char* flag, const std::string& value) {
      for (const auto& v : plan.variants)
        if (std::find(v.train_args.begin(), v.train_args.end(), flag) != v.train_args.end())
          throw app::UsageError(fmt::format("sweep: preset '{}' sets {} per variant (variant '{}'); it cannot be "
                                            "overridden", a.preset, flag, v.label));
      set_train_arg(plan.common_args, flag, value);
    };
    if (given("--model")) override_train_flag("--model", a.model);
    if (given("--dataset")) override_train_flag("--dataset", a.dataset);
    if (given("--base-batch")) plan.base_batch = a.base_batch;
  }
  if (given("--batch-sizes")) plan.batch_sizes = parse_int_list(a.batch_sizes, "--batch-sizes");
  if (given("--norms")) plan.variants = norm_variants(parse_list(a.norms));
  if (given("--base-lr")) plan.base_lr = a.base_lr;
  if (given("--lr-scaling")) plan.lr_scaling = a.lr_scaling;
  plan.jobs = a.jobs;
  plan.threads = a.threads;
  plan.eval_modes = plan.eval_modes && !a.no_eval_modes;
  // --epochs and --steps exclude each other: setting one drops the preset's other.
  if (!a.epochs.empty()) set_train_arg(plan.common_args, "--epochs", a.epochs), remove_train_arg(plan.common_args, "--steps");
  if (!a.steps.empty()) set_train_arg(plan.common_args, "--steps", a.steps), remove_train_arg(plan.common_args, "--epochs");
  if (!a.subset.empty()) set_train_arg(plan.common_args, "--subset", a.subset);
  if (!a.data_dir.empty()) set_train_arg(plan.common_args, "--data-dir", a.data_dir);
  const auto extras = sub.remaining();
  for (size_t i = 0; i < extras.size(); ++i) {
    const bool has_value = flag_has_value(extras, i);
    if (has_value) set_train_arg(plan.common_args, extras[i], extras[i + 1]), ++i;
    else if (std::find(plan.common_args.begin(), plan.common_args.end(), extras[i]) == plan.common_args.end())
      plan.common_args.push_back(extras[i]);
  }
  return plan;
}

}  // namespace

app::Command app::add_sweep_command(CLI::App& parent) {
  auto a = std::make_shared<SweepArgs>();
  CLI::App* s = parent.add_subcommand(
      "sweep", "Run one training per (norm, batch size, seed) in parallel; resumable. Any further flag is passed to "
               "every `normlab train` run (e.g. --optimizer adam)");
  s->allow_extras();
  s->add_option("--preset", a->preset, "Run a named preset: " + fmt::format("{}", fmt::join(sweep_preset_names(), ", ")));
  s->add_option("--out", a->out, "Sweep directory (runs, results.csv, logs)")->required();
  s->add_option("--model", a->model, "Model name");
  s->add_option("--dataset", a->dataset, "Dataset");
  s->add_option("--norms", a->norms, "Comma-separated norm names");
  s->add_option("--batch-sizes", a->batch_sizes, "Comma-separated batch sizes");
  s->add_option("--seeds", a->seeds, "Comma-separated seeds");
  s->add_option("--stat-batch-sizes", a->stat_batch_sizes,
                "Comma-separated statistics batches b >= 2: BN-family runs (bn, mobn, brn, wn --wn-mean-only-bn) get "
                "--stat-batch b for every b <= the batch size, named <label>-b<B>-sb<b>-s<seed>; the other norms "
                "(gbn included: its statistics batch is --ghost-batch) run once per batch size");
  s->add_option("--results", a->results_dir,
                "Directory of committed results (normlab export-results): a run finished there is not run again");
  s->add_option("--epochs", a->epochs, "Epochs per run (same for every batch size)");
  s->add_option("--steps", a->steps, "Steps per run (instead of --epochs)");
  s->add_option("--lr-scaling", a->lr_scaling,
                "lr = base * B/base_batch (linear), * sqrt(B/base_batch) (sqrt), or base (none)")
      ->check(CLI::IsMember({"linear", "sqrt", "none"}));
  s->add_option("--base-lr", a->base_lr, "Learning rate at --base-batch (default: train's --lr)");
  s->add_option("--base-batch", a->base_batch, "Batch size at which lr = base-lr (default: train's --batch-size)");
  s->add_option("--jobs", a->jobs, "Runs in parallel (processes)");
  s->add_option("--threads", a->threads, "Threads per run (1: parallel runs scale better than threads on small models)");
  s->add_option("--subset", a->subset, "Use only the first K training examples");
  s->add_option("--data-dir", a->data_dir, "Data directory (default: $NORMLAB_DATA_DIR)");
  s->add_flag("--no-eval-modes", a->no_eval_modes, "Skip running/batch/Precise-BN evaluation of BN-family runs");
  s->add_option("--shard", a->shard_spec, "Run only shard I of K (0 <= I < K) of the plan: runs i with i mod K == I "
                                         "(default: from SLURM_ARRAY_TASK_ID/COUNT or the Open MPI rank/size)");
  s->add_option("--claim-lease", a->claim_lease, "Seconds after which a claim on a run whose holder stopped "
                                                 "refreshing it may be taken over")
      ->check(app::kPositive);
  return {s, [a, s]() { return run_sweep(plan_from_args(*a, *s), app::resolve_shard(a->shard_spec), a->claim_lease); }};
}

}  // namespace nl
