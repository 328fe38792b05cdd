// normlab apps: data/model set-up and evaluation shared by the commands. See run_common.hpp.
#include "apps/run_common.hpp"

#include <cmath>

#include <fmt/format.h>

#include "core/autograd.hpp"
#include "data/loader.hpp"
#include "data/registry.hpp"
#include "layers/dropout.hpp"

namespace nl::app {

data::Augmentation training_augmentation(const TrainConfig& cfg) {
  return cfg.augment ? data::Augmentation::cifar() : data::Augmentation::none();
}

ImageData load_image_data(const TrainConfig& cfg, const nlohmann::json& saved) {
  ImageData d;
  d.split = data::load_image_dataset(cfg.dataset, cfg.data_dir);
  if (cfg.subset > 0 && cfg.subset < d.split.train.n) d.split.train = data::subset(d.split.train, 0, cfg.subset);
  if (cfg.input_norm == "standardize" && saved.contains("input_mean") && saved.contains("input_std")) {
    // Reuse the training run's statistics exactly (eval/resume), instead of recomputing them.
    d.normalization = data::Normalization::standardize(saved["input_mean"].get<std::vector<float>>(),
                                                       saved["input_std"].get<std::vector<float>>());
    return d;
  }
  try {
    d.normalization = data::make_normalization(cfg.input_norm, d.split.train);
  } catch (const Error& e) {
    throw UsageError(fmt::format("--input-norm: {}", e.what()));
  }
  return d;
}

TextData load_text_data(const TrainConfig& cfg) {
  TextData d{data::load_text_dataset(cfg.dataset, cfg.data_dir), {}};
  d.train_ids = d.corpus.train_ids();
  if (cfg.subset > 0 && cfg.subset < static_cast<int64_t>(d.train_ids.size())) d.train_ids.resize(cfg.subset);
  return d;
}

std::shared_ptr<Model> build_model(const ModelOptions& model, const NormOptions& norm) {
  try {
    validate_norm_options(norm);
    return make_model(model, norm);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
}

int64_t count_correct(const Tensor& logits, const std::vector<int32_t>& targets) {
  const Tensor l = logits.contiguous();
  const int64_t rows = static_cast<int64_t>(targets.size()), cols = l.numel() / rows;
  const float* p = l.data();
  int64_t correct = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = p + r * cols;
    int64_t best = 0;
    for (int64_t c = 1; c < cols; ++c)
      if (row[c] > row[best]) best = c;
    correct += best == targets[r];
  }
  return correct;
}

void disable_dropout(Module& model) {
  if (auto* d = dynamic_cast<Dropout*>(&model)) d->eval();
  for (auto& [name, child] : model.named_children()) disable_dropout(*child);
}

EvalResult evaluate_images(Model& model, const data::ImageDataset& ds, const data::Normalization& norm,
                           int64_t batch_size, bool batch_statistics) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  // Batch statistics: a training-mode forward updates running statistics; keep copies
  // and put them back, so this evaluation leaves the model exactly as it was.
  std::vector<std::pair<Tensor, Tensor>> saved;
  if (batch_statistics) {
    for (auto& [name, b] : model.named_buffers()) saved.emplace_back(b, b.clone());
    model.train();
    disable_dropout(model);
  } else {
    model.eval();
  }
  data::DataLoader loader(ds, {.batch_size = batch_size, .shuffle = false, .normalization = norm});
  EvalResult r;
  double loss_sum = 0.0;
  int64_t correct = 0;
  data::Batch b;
  while (loader.next(b)) {
    const Tensor logits = model.forward(b.x);
    const auto n = static_cast<int64_t>(b.y.size());
    loss_sum += static_cast<double>(cross_entropy(logits, b.y).item()) * n;
    correct += count_correct(logits, b.y);
    r.count += n;
  }
  for (auto& [live, copy] : saved) live.copy_(copy);
  model.train(was_training);
  r.loss = r.count ? loss_sum / r.count : NAN;
  r.accuracy = r.count ? static_cast<double>(correct) / r.count : NAN;
  return r;
}

EvalResult evaluate_text(Model& model, const std::vector<int32_t>& ids, int64_t batch, int64_t seq_len,
                         int64_t max_batches) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  // Consecutive, non-overlapping windows from the start of the split: the same windows at
  // every evaluation, so validation curves are comparable between steps and runs.
  const int64_t windows = (static_cast<int64_t>(ids.size()) - 1) / seq_len;
  NL_CHECK(windows >= 1, "the validation text (", ids.size(), " characters) is shorter than one window of ",
           seq_len + 1, " characters; use a smaller --context or a longer text");
  EvalResult r;
  double loss_sum = 0.0;
  int64_t correct = 0;
  for (int64_t w0 = 0, nb = 0; w0 < windows && nb < max_batches; w0 += batch, ++nb) {
    const int64_t b = std::min(batch, windows - w0);
    std::vector<int32_t> x(b * seq_len), y(b * seq_len);
    for (int64_t i = 0; i < b; ++i)
      for (int64_t t = 0; t < seq_len; ++t) {
        x[i * seq_len + t] = ids[(w0 + i) * seq_len + t];
        y[i * seq_len + t] = ids[(w0 + i) * seq_len + t + 1];
      }
    const Tensor logits = model.forward_ids(x, {b, seq_len});
    const Tensor flat = logits.reshape({b * seq_len, logits.size(-1)});
    loss_sum += static_cast<double>(cross_entropy(flat, y).item()) * (b * seq_len);
    correct += count_correct(flat, y);
    r.count += b * seq_len;
  }
  model.train(was_training);
  r.loss = loss_sum / r.count;
  r.accuracy = static_cast<double>(correct) / r.count;
  return r;
}

double unigram_entropy(const std::vector<int32_t>& ids, int32_t vocab_size) {
  std::vector<int64_t> counts(vocab_size, 0);
  for (int32_t id : ids) ++counts[id];
  double h = 0.0;
  for (int64_t c : counts)
    if (c > 0) {
      const double p = static_cast<double>(c) / ids.size();
      h -= p * std::log(p);
    }
  return h;
}

}  // namespace nl::app
