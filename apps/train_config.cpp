// normlab apps: a run's options as JSON and their validation. See train_config.hpp.
#include "apps/train_config.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "data/registry.hpp"

// config.json's fields: each list names the saved members once, for writing and reading
// (a missing field is an error on reading). Not saved: the schedule's base_lr and
// total_steps (derived from lr and the run length), --overwrite and --simulate-kill-at-step.
namespace nl {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ModelOptions, name, input_shape, num_classes, width, depth, activation, vocab_size,
                                   context, embed_dim, hidden_size, max_steps, d_model, heads, layers, pre_ln, dropout,
                                   seed)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(NormOptions, name, groups, eps, momentum, stat_batch, ghost_batch, r_max, d_max,
                                   renorm_warmup_steps, wn_mean_only_bn, wn_data_init, pn_warmup_steps, pn_backward,
                                   pn_groups, pn_alpha_bkw)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ScheduleOptions, name, warmup_steps, step_size, gamma, min_lr)
namespace app {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TrainConfig, dataset, data_dir, subset, input_norm, augment, classes_per_batch,
                                   model, norm, batch_size, epochs, steps, optimizer, lr, momentum_sgd, nesterov, weight_decay,
                                   no_decay_norm_bias, schedule, clip_grad_norm, check_grads, seed, threads, out,
                                   eval_every_epoch, eval_every, val_batches, checkpoint_every, log_every,
                                   diagnostics, diagnostics_every, diagnostics_layers)
}  // namespace app
}  // namespace nl

namespace nl::app {

ModelOptions TrainConfig::default_model_options() {
  ModelOptions m;
  m.name = kDefaultModel;
  return m;
}

NormOptions TrainConfig::default_norm_options() {
  NormOptions n;
  n.name = "bn";
  return n;
}

nlohmann::json config_to_json(const TrainConfig& c) { return c; }

TrainConfig config_from_json(const nlohmann::json& saved) {
  try {
    nlohmann::json j = saved;
    // Fields added later: runs made before them lack them, and ran with them off.
    if (!j.contains("classes_per_batch")) j["classes_per_batch"] = 0;
    if (!j.contains("diagnostics")) j["diagnostics"] = false;
    if (!j.contains("diagnostics_every")) j["diagnostics_every"] = 0;
    if (!j.contains("diagnostics_layers")) j["diagnostics_layers"] = "";
    if (j.contains("norm") && j["norm"].is_object()) {
      nlohmann::json& n = j["norm"];
      if (!n.contains("stat_batch")) n["stat_batch"] = 0;
      const NormOptions defaults;  // pn's options (runs from before pn have the defaults)
      if (!n.contains("pn_warmup_steps")) n["pn_warmup_steps"] = defaults.pn_warmup_steps;
      if (!n.contains("pn_backward")) n["pn_backward"] = defaults.pn_backward;
      if (!n.contains("pn_groups")) n["pn_groups"] = defaults.pn_groups;
      if (!n.contains("pn_alpha_bkw")) n["pn_alpha_bkw"] = defaults.pn_alpha_bkw;
    }
    return j.get<TrainConfig>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("config.json is incomplete or malformed: {}", e.what()));
  }
}

std::string default_out_dir(const TrainConfig& cfg) {
  std::string ds = cfg.dataset;
  // "text:/a/b/input.txt" -> "input.txt": a readable directory name without slashes.
  if (auto colon = ds.find(':'); colon != std::string::npos) {
    ds = ds.substr(colon + 1);
    if (auto slash = ds.find_last_of('/'); slash != std::string::npos) ds = ds.substr(slash + 1);
  }
  return fmt::format("runs/{}-{}-{}-s{}", ds, cfg.model.name, cfg.norm.name, cfg.seed);
}

void validate_config(const TrainConfig& c) {
  auto fail = [](const std::string& msg) { throw UsageError(msg); };
  if (c.batch_size < 1) fail(fmt::format("--batch-size must be >= 1, got {}", c.batch_size));
  if (c.steps < 0) fail(fmt::format("--steps must be >= 0, got {}", c.steps));
  if (c.steps == 0 && c.epochs < 1) fail(fmt::format("--epochs must be >= 1, got {}", c.epochs));
  if (!(c.lr >= 0.0f) || std::isinf(c.lr)) fail(fmt::format("--lr must be >= 0, got {}", c.lr));
  if (c.optimizer != "sgd" && c.optimizer != "adam" && c.optimizer != "adamw")
    fail(fmt::format("unknown --optimizer '{}' (choose sgd, adam or adamw)", c.optimizer));
  if (c.momentum_sgd < 0.0f) fail(fmt::format("--momentum-sgd must be >= 0, got {}", c.momentum_sgd));
  if (c.nesterov && (c.optimizer != "sgd" || c.momentum_sgd <= 0.0f))
    fail("--nesterov needs --optimizer sgd with --momentum-sgd > 0");
  if (c.weight_decay < 0.0f) fail(fmt::format("--weight-decay must be >= 0, got {}", c.weight_decay));
  if (c.clip_grad_norm < 0.0f) fail(fmt::format("--clip-grad-norm must be >= 0, got {}", c.clip_grad_norm));
  if (c.subset < 0) fail(fmt::format("--subset must be >= 0, got {}", c.subset));
  if (c.threads < 0) fail(fmt::format("--threads must be >= 0, got {}", c.threads));
  try {
    data::parse_dataset_name(c.dataset);
    validate_norm_options(c.norm);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  const auto names = model_names();
  if (std::find(names.begin(), names.end(), c.model.name) == names.end())
    fail(fmt::format("unknown --model '{}'", c.model.name));
  const bool text = data::is_text_dataset(c.dataset);
  if (c.classes_per_batch < 0) fail(fmt::format("--classes-per-batch must be >= 0 (0 = off), got {}", c.classes_per_batch));
  if (text && c.classes_per_batch > 0)
    fail(fmt::format("--classes-per-batch needs an image classification dataset; {} is text", c.dataset));
  const bool lm = c.model.name == "lstm" || c.model.name == "gru" || c.model.name == "transformer";
  if (text && !lm)
    fail(fmt::format("--dataset {} is text: use a language model (--model lstm, gru or transformer), not {}",
                     c.dataset, c.model.name));
  if (!text && lm)
    fail(fmt::format("--model {} is a language model: use a text dataset (--dataset text:PATH)", c.model.name));
}

}  // namespace nl::app
