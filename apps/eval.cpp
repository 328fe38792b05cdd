// normlab apps: `normlab eval --run DIR`, evaluate a trained run on its test set.
//
// For models with BatchNorm-family layers the accuracy is reported three ways, side by side,
// because the difference between them is the point of studying BN:
//   running   eval mode: the running statistics accumulated with momentum during training
//   batch     training-mode forward on test batches of the training batch size (buffers are
//             saved and restored, so nothing changes): what the network saw while training
//   precise   running statistics recomputed over K training batches (augmented as in
//             training) with frozen weights (Precise BN, layers/norm/precise_bn.hpp), then eval mode
// A large gap between "running" and "precise" means the momentum average lagged the weights;
// a large gap between "batch" and the others means the batch size is too small for BN.
#include <cmath>
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "apps/checkpoint.hpp"
#include "apps/commands.hpp"
#include "apps/run_common.hpp"
#include "apps/run_dir.hpp"
#include "core/parallel.hpp"
#include "data/loader.hpp"
#include "data/registry.hpp"
#include "layers/norm/precise_bn.hpp"

namespace nl::app {

namespace {

struct EvalArgs {
  std::string run, data_dir;
  int64_t batch_size = 0;        // 0 = the run's training batch size
  int64_t precise_batches = 200;
  int threads = 0;
};

nlohmann::json to_json(const EvalResult& r) { return {{"accuracy", r.accuracy}, {"loss", r.loss}, {"count", r.count}}; }

int run_eval(const EvalArgs& a) {
  const nlohmann::json saved = read_json(a.run + "/config.json");
  TrainConfig cfg = config_from_json(saved);
  if (!a.data_dir.empty()) cfg.data_dir = a.data_dir;
  const nlohmann::json resolved = saved.value("resolved", nlohmann::json::object());
  set_num_threads(a.threads > 0 ? a.threads : resolved.value("threads", 1));
  auto model = build_model(cfg.model, cfg.norm);
  load_model(a.run + "/model.safetensors", *model);
  const int64_t batch = a.batch_size > 0 ? a.batch_size : cfg.batch_size;
  nlohmann::json out = {{"run", a.run}, {"model", cfg.model.name}, {"norm", cfg.norm.name}, {"dataset", cfg.dataset},
                        {"batch_size", batch}};

  if (data::is_text_dataset(cfg.dataset)) {
    const TextData text = load_text_data(cfg);
    const EvalResult r = evaluate_text(*model, text.corpus.val_ids(), batch, cfg.model.context, 1 << 30);
    const double h = unigram_entropy(text.train_ids, text.corpus.vocab_size());
    std::printf("validation: loss %.4f nats/char, next-char accuracy %.2f%% (%lld chars); unigram baseline %.4f\n",
                r.loss, 100.0 * r.accuracy, static_cast<long long>(r.count), h);
    out["modes"] = {{"running", to_json(r)}};
    out["unigram_entropy_nats"] = h;
    write_json_atomic(a.run + "/eval_modes.json", out);
    return 0;
  }

  const ImageData data = load_image_data(cfg, resolved);
  const auto& test = data.split.test;
  const EvalResult running = evaluate_images(*model, test, data.normalization, batch, false);
  out["modes"]["running"] = to_json(running);
  out["running_stats_accuracy"] = running.accuracy;  // flat keys: what sweep/report read
  const bool bn_family = !find_batch_stat_norms(*model).empty();
  if (!bn_family) {
    std::printf("test accuracy %.2f%%, loss %.4f (%lld images; %s has no batch statistics to compare)\n",
                100.0 * running.accuracy, running.loss, static_cast<long long>(running.count), cfg.norm.name.c_str());
  } else {
    const EvalResult batch_stats = evaluate_images(*model, test, data.normalization, batch, true);
    // Precise BN from K shuffled training batches of the run's batch size, augmented as in
    // training: estimated on un-augmented images the statistics shift (first layer's variance
    // 0.73x the running one for a crop + flip CIFAR run) and the accuracy drops (Batch Renorm
    // 69.6% -> 55.9%), as Wu & Johnson 2021 warn; on augmented ones they match the running ones.
    data::DataLoader loader(data.split.train, {.batch_size = batch, .shuffle = true, .drop_last = true,
                                               .seed = cfg.seed + 1, .augment = training_augmentation(cfg),
                                               .normalization = data.normalization});
    const int64_t used = update_precise_bn_stats(
        *model,
        [&loader]() {
          data::Batch b;
          return loader.next(b) ? b.x : Tensor();
        },
        a.precise_batches);
    const EvalResult precise = evaluate_images(*model, test, data.normalization, batch, false);
    out["modes"]["batch"] = to_json(batch_stats);
    out["modes"]["precise"] = to_json(precise);
    out["precise_batches"] = used;
    out["batch_stats_accuracy"] = batch_stats.accuracy;
    out["precise_bn_accuracy"] = precise.accuracy;
    std::printf("%-10s %10s %10s   (%lld test images, batch %lld)\n", "BN stats", "accuracy", "loss",
                static_cast<long long>(running.count), static_cast<long long>(batch));
    auto row = [](const char* name, const EvalResult& r) {
      std::printf("%-10s %9.2f%% %10.4f\n", name, 100.0 * r.accuracy, r.loss);
    };
    row("running", running);
    row("batch", batch_stats);
    row(fmt::format("precise/{}", used).c_str(), precise);
  }
  write_json_atomic(a.run + "/eval_modes.json", out);
  std::fprintf(stderr, "wrote %s/eval_modes.json\n", a.run.c_str());
  return 0;
}

}  // namespace

Command add_eval_command(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* e = app.add_subcommand("eval", "Evaluate a run's model.safetensors on the test set (BN models: with "
                                            "running, batch and Precise-BN statistics); writes DIR/eval_modes.json");
  e->option_defaults()->always_capture_default();
  e->add_option("--run", a->run, "run directory written by `normlab train`")->required();
  e->add_option("--data-dir", a->data_dir, "where datasets live (default: as in the run)");
  e->add_option("--batch-size", a->batch_size, "evaluation batch size (0 = the run's training batch size)")
      ->check(kNonNegative);
  e->add_option("--precise-batches", a->precise_batches, "training batches for Precise BN statistics")
      ->check(kAtLeastOne);
  e->add_option("--threads", a->threads, "threads (0 = as in the run)")->check(kNonNegative);
  return {e, [a]() { return run_eval(*a); }};
}

}  // namespace nl::app
