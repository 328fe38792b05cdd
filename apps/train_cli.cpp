// normlab apps: `normlab train`, the flags of a training run (they fill a TrainConfig).
#include <cstdio>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "apps/commands.hpp"
#include "apps/train.hpp"
#include "core/distributed.hpp"
#include "dist/launch.hpp"
#include "layers/models/model.hpp"
#include "layers/norm/factory.hpp"
#include "optim/schedule.hpp"

namespace nl::app {

Command add_train_command(CLI::App& app) {
  auto cfg = std::make_shared<TrainConfig>();
  auto resume = std::make_shared<std::string>();
  auto sync_bn = std::make_shared<bool>(false);
  // Under mpirun the cores of a machine are shared among its ranks.
  cfg->threads = std::max(1, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())) / dist::local_ranks());
  CLI::App* t = app.add_subcommand("train", "Train a model; writes config.json, metrics.csv, eval.csv, "
                                             "summary.json, model.safetensors and a checkpoint to --out");
  t->option_defaults()->always_capture_default();

  const std::string d = "Data";
  t->add_option("--dataset", cfg->dataset, "mnist | fashion-mnist | cifar10 | text:PATH | folder:PATH")->group(d);
  t->add_option("--data-dir", cfg->data_dir, "where datasets live (default: $NORMLAB_DATA_DIR, else ./data)")->group(d);
  t->add_option("--subset", cfg->subset, "use only the first K training examples (characters for text; 0 = all)")
      ->check(kNonNegative)->group(d);
  t->add_option("--input-norm", cfg->input_norm, "image input normalization: standardize | unit | minmax")
      ->check(CLI::IsMember({"standardize", "unit", "minmax"}))->group(d);
  t->add_flag("--augment", cfg->augment, "random crop (pad 4) + horizontal flip of training images")->group(d);
  t->add_option("--classes-per-batch", cfg->classes_per_batch,
                "non-i.i.d. batches: every batch from exactly K classes, as evenly as the batch size allows "
                "(0 = off: plain shuffling); images only")
      ->check(kNonNegative)->group(d);

  const std::string m = "Model";
  t->add_option("--model", cfg->model.name, "mlp | cnn | resnet20 | lstm | gru | transformer")
      ->check(CLI::IsMember(model_names()))->group(m);
  t->add_option("--width", cfg->model.width, "mlp: units per hidden layer")->check(kAtLeastOne)->group(m);
  t->add_option("--depth", cfg->model.depth, "mlp: hidden layers")->check(kAtLeastOne)->group(m);
  t->add_option("--activation", cfg->model.activation, "mlp: sigmoid | relu | tanh | gelu")
      ->check(CLI::IsMember({"sigmoid", "relu", "tanh", "gelu"}))->group(m);
  t->add_option("--dropout", cfg->model.dropout, "dropout probability (mlp, language models)")
      ->check(CLI::Range(0.0f, 0.99f))->group(m);
  t->add_option("--context", cfg->model.context, "language models: characters per training window")
      ->check(kAtLeastOne)->group(m);
  t->add_option("--embed-dim", cfg->model.embed_dim, "lstm/gru: embedding width")->check(kAtLeastOne)->group(m);
  t->add_option("--hidden-size", cfg->model.hidden_size, "lstm/gru: state width")->check(kAtLeastOne)->group(m);
  t->add_option("--d-model", cfg->model.d_model, "transformer: width")->check(kAtLeastOne)->group(m);
  t->add_option("--heads", cfg->model.heads, "transformer: attention heads")->check(kAtLeastOne)->group(m);
  t->add_option("--layers", cfg->model.layers, "transformer: blocks")->check(kAtLeastOne)->group(m);
  t->add_flag("--pre-ln,!--post-ln", cfg->model.pre_ln,
              "transformer: norm before each sublayer (--pre-ln, default) or after the residual (--post-ln)")
      ->group(m);

  const std::string n = "Normalization";
  std::string norm_help, grouped, refused;
  for (const NormInfo& info : norm_registry()) {
    norm_help += fmt::format("{}{} ({}{}{})", norm_help.empty() ? "" : " | ", info.name, info.method,
                             *info.flags ? "; " : "", info.flags);
    if (info.stat_batch == NormInfo::StatBatch::grouped) grouped += fmt::format("{}{}", grouped.empty() ? "" : ", ", info.name);
    if (info.stat_batch == NormInfo::StatBatch::refused) refused += fmt::format("{}{}", refused.empty() ? "" : ", ", info.name);
  }
  t->add_option("--norm", cfg->norm.name, norm_help)->check(CLI::IsMember(norm_names()))->group(n);
  t->add_flag("--sync-bn", *sync_bn, "with --norm bn under mpirun: BatchNorm statistics over the global batch "
                                    "(SyncBatchNorm, = --norm syncbn) instead of each rank's own")->group(n);
  t->add_option("--groups", cfg->norm.groups, "gn, ws: groups (must divide the channels)")
      ->check(kAtLeastOne)->group(n);
  t->add_option("--eps", cfg->norm.eps, "added to the variance")->check(kPositive)->group(n);
  t->add_option("--momentum", cfg->norm.momentum,
                "running statistics: running = (1-m) running + m batch (PyTorch); negative = cumulative average")
      ->group(n);
  t->add_option("--stat-batch", cfg->norm.stat_batch,
                fmt::format("{} (wn: its mean-only BN; and the LSTM's bn): batch statistics over groups of this many "
                            "examples of each batch, one running-stats update per group (0 = the whole batch; else "
                            ">= 2); the batch-independent norms accept and ignore it; {} refuse it",
                            grouped, refused))
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            const bool ok = v == "0" || number_check(2, false, "")(v).empty();
            return ok ? "" : "must be 0 (the whole batch) or a number >= 2, got '" + v + "'";
          },
          "0 or >= 2"))
      ->group(n);
  t->add_option("--ghost-batch", cfg->norm.ghost_batch, "gbn: virtual batch size (gbn = bn with --stat-batch this)")
      ->check(kAtLeastOne)->group(n);
  t->add_option("--r-max", cfg->norm.r_max, "brn: clip of r")->check(CLI::Range(1.0f, 1e6f))->group(n);
  t->add_option("--d-max", cfg->norm.d_max, "brn: clip of d")->check(kNonNegative)->group(n);
  t->add_option("--renorm-warmup", cfg->norm.renorm_warmup_steps, "brn: steps to ramp r_max/d_max (0 = none)")
      ->check(kNonNegative)->group(n);
  t->add_flag("--wn-mean-only-bn", cfg->norm.wn_mean_only_bn, "wn: mean-only BatchNorm after each layer")->group(n);
  t->add_option("--pn-warmup", cfg->norm.pn_warmup_steps,
                "pn: steps normalized by the batch's quadratic mean before the running one (official 10000)")
      ->check(kNonNegative)->group(n);
  t->add_option("--pn-backward", cfg->norm.pn_backward,
                "pn: approximate (the official backward, with its own running statistic) | exact (the gradient)")
      ->check(CLI::IsMember({"approximate", "exact"}))->group(n);
  t->add_option("--pn-groups", cfg->norm.pn_groups, "pn: GroupScaling1D groups per token (must divide the width)")
      ->check(kAtLeastOne)->group(n);
  t->add_option("--pn-alpha-bkw", cfg->norm.pn_alpha_bkw, "pn: average of the backward's running statistic (0.9)")
      ->check(CLI::Range(0.0f, 1.0f))->group(n);
  t->add_flag("--wn-data-init", cfg->norm.wn_data_init, "wn: data-dependent initialization")->group(n);

  const std::string o = "Optimization";
  t->add_option("--batch-size", cfg->batch_size, "examples (or text windows) per step")
      ->check(kAtLeastOne)->group(o);
  auto* epochs = t->add_option("--epochs", cfg->epochs, "passes over the training data")
                     ->check(kAtLeastOne)->group(o);
  t->add_option("--steps", cfg->steps, "optimizer steps (overrides --epochs)")
      ->check(kAtLeastOne)->excludes(epochs)->group(o);
  t->add_option("--lr", cfg->lr, "learning rate (peak, after warm-up)")->check(kNonNegative)->group(o);
  t->add_option("--optimizer", cfg->optimizer, "sgd | adam | adamw")
      ->check(CLI::IsMember({"sgd", "adam", "adamw"}))->group(o);
  t->add_option("--momentum-sgd", cfg->momentum_sgd, "SGD momentum")->check(kNonNegative)->group(o);
  t->add_flag("--nesterov", cfg->nesterov, "Nesterov momentum (SGD)")->group(o);
  t->add_option("--weight-decay", cfg->weight_decay, "L2 (sgd, adam) or decoupled (adamw) weight decay")
      ->check(kNonNegative)->group(o);
  t->add_flag("--no-decay-norm-bias", cfg->no_decay_norm_bias, "no weight decay on biases and norm parameters")
      ->group(o);
  t->add_option("--schedule", cfg->schedule.name, "constant | step | cosine")
      ->check(CLI::IsMember(schedule_names()))->group(o);
  t->add_option("--warmup-steps", cfg->schedule.warmup_steps, "linear warm-up steps")
      ->check(kNonNegative)->group(o);
  t->add_option("--step-size", cfg->schedule.step_size, "step schedule: steps between decays (0 = a third of the run)")
      ->check(kNonNegative)->group(o);
  t->add_option("--gamma", cfg->schedule.gamma, "step schedule: decay factor")->check(kPositive)->group(o);
  t->add_option("--min-lr", cfg->schedule.min_lr, "cosine schedule: final learning rate")
      ->check(kNonNegative)->group(o);
  t->add_option("--clip-grad-norm", cfg->clip_grad_norm, "clip the global gradient norm to C (0 = off)")
      ->check(kNonNegative)->group(o);
  t->add_flag("--check-grads", cfg->check_grads, "stop (as diverged) when any gradient is NaN/Inf")->group(o);

  const std::string r = "Run";
  t->add_option("--seed", cfg->seed, "seed of the initialization, data order and dropout")->group(r);
  t->add_option("--threads", cfg->threads, "threads (results are bit-identical for the same count)")
      ->check(kAtLeastOne)->group(r);
  t->add_option("--out", cfg->out, "run directory (default: runs/<dataset>-<model>-<norm>-s<seed>)")->group(r);
  t->add_flag("--overwrite", cfg->overwrite, "allow --out to be a directory that already holds a run")->group(r);
  t->add_flag("--eval-every-epoch", cfg->eval_every_epoch, "images: test accuracy after every epoch")->group(r);
  t->add_option("--eval-every", cfg->eval_every, "text: validation every N steps (0 = every epoch)")
      ->check(kNonNegative)->group(r);
  t->add_option("--val-batches", cfg->val_batches, "text: validation batches per evaluation")
      ->check(kAtLeastOne)->group(r);
  t->add_option("--checkpoint-every", cfg->checkpoint_every, "steps between checkpoints (0 = every epoch)")
      ->check(kNonNegative)->group(r);
  t->add_option("--log-every", cfg->log_every,
                "steps per metrics.csv row (and log line off a terminal); 0 = about 250 rows per run, at most 50 steps apart")
      ->check(kNonNegative)->group(r);
  auto* diagnostics = t->add_flag("--diagnostics", cfg->diagnostics,
                                  "write DIR/diagnostics.csv: percentiles of each norm layer's input and output, "
                                  "BN statistics noise, Batch Renorm clipping, saturation, gradient norms (weights, and "
                                  "the activations at each norm's input and output) (off: no cost)")
                          ->group(r);
  t->add_option("--diagnostics-every", cfg->diagnostics_every, "steps between diagnostics rows (0 = --log-every)")
      ->check(kNonNegative)->needs(diagnostics)->group(r);
  t->add_option("--diagnostics-layers", cfg->diagnostics_layers,
                "only these norm layers: a comma list of module paths (as in model.safetensors) or indices "
                "(0-based, in the order the norm layers run); default all")
      ->needs(diagnostics)->group(r);
  auto* resume_opt = t->add_option("--resume", *resume,
                                   "continue the run in DIR from its last checkpoint (its saved options are "
                                   "used; only --threads and --data-dir may be given with it)")
                         ->group(r);
  // For tests of --resume: exit like `kill -9` right after this step. Hidden (empty group).
  t->add_option("--simulate-kill-at-step", cfg->simulate_kill_at_step, "")->group("");
  t->add_option("--simulate-kill-rank", cfg->simulate_kill_rank, "")->group("");

  Command c{t, nullptr};
  c.run = [t, cfg, resume, resume_opt, sync_bn]() -> int {
    if (*sync_bn) {  // like PyTorch's convert_sync_batchnorm: every BatchNorm becomes a SyncBatchNorm
      if (cfg->norm.name != "bn" && cfg->norm.name != "syncbn")
        throw UsageError(fmt::format("--sync-bn turns BatchNorm into SyncBatchNorm: it needs --norm bn, got --norm {}",
                                     cfg->norm.name));
      cfg->norm.name = "syncbn";
    }
    RunResult result;
    if (resume_opt->count() > 0) {
      // A resumed run must be the same run: refuse options that would silently change it.
      for (const CLI::Option* opt : t->get_options())
        if (opt->count() > 0 && opt != resume_opt && opt->get_name() != "--threads" &&
            opt->get_name() != "--data-dir" && opt->get_name() != "--simulate-kill-at-step" &&
            opt->get_name() != "--simulate-kill-rank")
          throw UsageError(fmt::format("{} cannot be combined with --resume: a resumed run keeps the options in "
                                       "{}/config.json (only --threads and --data-dir may be given)",
                                       opt->get_name(), *resume));
      const bool threads_given = t->get_option("--threads")->count() > 0;
      result = resume_run(*resume, threads_given ? cfg->threads : 0, cfg->data_dir);
      if (cfg->simulate_kill_at_step > 0) std::fprintf(stderr, "(--simulate-kill-at-step ignored on resume)\n");
    } else {
      result = train_run(*cfg);
    }
    if (dist::world().rank() == 0) std::printf("%s\n", result.summary.dump(2).c_str());  // one summary per run
    return result.exit_code;
  };
  return c;
}

}  // namespace nl::app
