// normlab apps: the training loop (images and character-level text). See train.hpp.
#include "apps/train.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <thread>

#include <fmt/format.h>

#include "apps/checkpoint.hpp"
#include "apps/progress.hpp"
#include "apps/run_common.hpp"
#include "apps/run_dir.hpp"
#include "core/kernels/kernels.hpp"
#include "core/parallel.hpp"
#include "core/runtime_env.hpp"
#include "data/class_batches.hpp"
#include "data/loader.hpp"
#include "data/registry.hpp"
#include "optim/optimizer.hpp"

#ifndef NORMLAB_VERSION
#define NORMLAB_VERSION "0.1.0"
#endif

namespace nl::app {

// ---------------------------------------------------------------- configuration <-> JSON

ModelOptions TrainConfig::default_model_options() {
  ModelOptions m;
  m.name = "cnn";
  return m;
}

NormOptions TrainConfig::default_norm_options() {
  NormOptions n;
  n.name = "bn";
  return n;
}

nlohmann::json config_to_json(const TrainConfig& c) {
  const ModelOptions& m = c.model;
  const NormOptions& n = c.norm;
  return {
      {"dataset", c.dataset}, {"data_dir", c.data_dir}, {"subset", c.subset}, {"input_norm", c.input_norm},
      {"augment", c.augment}, {"classes_per_batch", c.classes_per_batch},
      {"model",
       {{"name", m.name}, {"input_shape", m.input_shape}, {"num_classes", m.num_classes}, {"width", m.width},
        {"depth", m.depth}, {"activation", m.activation}, {"vocab_size", m.vocab_size}, {"context", m.context},
        {"embed_dim", m.embed_dim}, {"hidden_size", m.hidden_size}, {"max_steps", m.max_steps},
        {"d_model", m.d_model}, {"heads", m.heads}, {"layers", m.layers}, {"pre_ln", m.pre_ln},
        {"dropout", m.dropout}, {"seed", m.seed}}},
      {"norm",
       {{"name", n.name}, {"groups", n.groups}, {"eps", n.eps}, {"momentum", n.momentum},
        {"stat_batch", n.stat_batch}, {"ghost_batch", n.ghost_batch}, {"r_max", n.r_max}, {"d_max", n.d_max},
        {"renorm_warmup_steps", n.renorm_warmup_steps}, {"wn_mean_only_bn", n.wn_mean_only_bn},
        {"wn_data_init", n.wn_data_init}}},
      {"batch_size", c.batch_size}, {"epochs", c.epochs}, {"steps", c.steps}, {"optimizer", c.optimizer},
      {"lr", c.lr}, {"momentum_sgd", c.momentum_sgd}, {"nesterov", c.nesterov}, {"weight_decay", c.weight_decay},
      {"no_decay_norm_bias", c.no_decay_norm_bias},
      {"schedule",
       {{"name", c.schedule.name}, {"warmup_steps", c.schedule.warmup_steps}, {"step_size", c.schedule.step_size},
        {"gamma", c.schedule.gamma}, {"min_lr", c.schedule.min_lr}}},
      {"clip_grad_norm", c.clip_grad_norm}, {"check_grads", c.check_grads}, {"seed", c.seed},
      {"threads", c.threads}, {"out", c.out}, {"eval_every_epoch", c.eval_every_epoch},
      {"eval_every", c.eval_every}, {"val_batches", c.val_batches}, {"checkpoint_every", c.checkpoint_every},
      {"log_every", c.log_every}};
}

TrainConfig config_from_json(const nlohmann::json& j) {
  TrainConfig c;
  try {
    const auto& m = j.at("model");
    const auto& n = j.at("norm");
    const auto& s = j.at("schedule");
    c.dataset = j.at("dataset");
    c.data_dir = j.at("data_dir");
    c.subset = j.at("subset");
    c.input_norm = j.at("input_norm");
    c.augment = j.at("augment");
    c.classes_per_batch = j.value("classes_per_batch", int64_t{0});  // absent in runs made before the flag
    c.model.name = m.at("name");
    c.model.input_shape = m.at("input_shape").get<Shape>();
    c.model.num_classes = m.at("num_classes");
    c.model.width = m.at("width");
    c.model.depth = m.at("depth");
    c.model.activation = m.at("activation");
    c.model.vocab_size = m.at("vocab_size");
    c.model.context = m.at("context");
    c.model.embed_dim = m.at("embed_dim");
    c.model.hidden_size = m.at("hidden_size");
    c.model.max_steps = m.at("max_steps");
    c.model.d_model = m.at("d_model");
    c.model.heads = m.at("heads");
    c.model.layers = m.at("layers");
    c.model.pre_ln = m.at("pre_ln");
    c.model.dropout = m.at("dropout");
    c.model.seed = m.at("seed");
    c.norm.name = n.at("name");
    c.norm.groups = n.at("groups");
    c.norm.eps = n.at("eps");
    c.norm.momentum = n.at("momentum");
    c.norm.stat_batch = n.value("stat_batch", int64_t{0});  // absent in runs made before --stat-batch
    c.norm.ghost_batch = n.at("ghost_batch");
    c.norm.r_max = n.at("r_max");
    c.norm.d_max = n.at("d_max");
    c.norm.renorm_warmup_steps = n.at("renorm_warmup_steps");
    c.norm.wn_mean_only_bn = n.at("wn_mean_only_bn");
    c.norm.wn_data_init = n.at("wn_data_init");
    c.batch_size = j.at("batch_size");
    c.epochs = j.at("epochs");
    c.steps = j.at("steps");
    c.optimizer = j.at("optimizer");
    c.lr = j.at("lr");
    c.momentum_sgd = j.at("momentum_sgd");
    c.nesterov = j.at("nesterov");
    c.weight_decay = j.at("weight_decay");
    c.no_decay_norm_bias = j.at("no_decay_norm_bias");
    c.schedule.name = s.at("name");
    c.schedule.warmup_steps = s.at("warmup_steps");
    c.schedule.step_size = s.at("step_size");
    c.schedule.gamma = s.at("gamma");
    c.schedule.min_lr = s.at("min_lr");
    c.clip_grad_norm = j.at("clip_grad_norm");
    c.check_grads = j.at("check_grads");
    c.seed = j.at("seed");
    c.threads = j.at("threads");
    c.out = j.at("out");
    c.eval_every_epoch = j.at("eval_every_epoch");
    c.eval_every = j.at("eval_every");
    c.val_batches = j.at("val_batches");
    c.checkpoint_every = j.at("checkpoint_every");
    c.log_every = j.at("log_every");
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("config.json is incomplete or malformed: {}", e.what()));
  }
  return c;
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

// ---------------------------------------------------------------- Ctrl-C

namespace {

// The first SIGINT/SIGTERM asks the loop to stop after the current step (it then writes a
// checkpoint and summary); a second one gets the default action, i.e. kills at once.
std::atomic<bool> g_stop_requested{false};

extern "C" void on_stop_signal(int sig) {
  g_stop_requested = true;
  std::signal(sig, SIG_DFL);
}

class StopSignalScope {
 public:
  StopSignalScope() {
    g_stop_requested = false;
    old_int_ = std::signal(SIGINT, on_stop_signal);
    old_term_ = std::signal(SIGTERM, on_stop_signal);
  }
  ~StopSignalScope() {
    std::signal(SIGINT, old_int_);
    std::signal(SIGTERM, old_term_);
  }

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
};

std::string num(double v) { return std::isfinite(v) ? fmt::format("{:.6g}", v) : std::string("nan"); }

// ---------------------------------------------------------------- the run

void validate(const TrainConfig& c) {
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

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& c, const Module& model) {
  // Two groups so biases and norm gains/shifts (the 1-D parameters) can skip weight decay:
  // decaying a BN gain towards 0 fights the normalization rather than regularizing.
  ParamGroup decay{{}, c.weight_decay}, no_decay{{}, 0.0f};
  for (auto& [name, p] : model.named_parameters())
    (c.no_decay_norm_bias && p.dim() <= 1 ? no_decay : decay).params.push_back(p);
  std::vector<ParamGroup> groups{decay};
  if (!no_decay.params.empty()) groups.push_back(no_decay);
  if (c.optimizer == "sgd") return std::make_unique<SGD>(groups, SGDOptions{c.lr, c.momentum_sgd, c.nesterov});
  AdamOptions o;
  o.lr = c.lr;
  o.decoupled_weight_decay = c.optimizer == "adamw";
  return std::make_unique<Adam>(groups, o);
}

// Everything a run tracks between steps; the part that must survive a resume goes into
// the checkpoint's "extra".
struct Window {  // the current logging window
  double loss_sum = 0.0;
  int64_t correct = 0, predictions = 0, steps = 0;
  nlohmann::json to_json() const {
    return {{"loss_sum", loss_sum}, {"correct", correct}, {"predictions", predictions}, {"steps", steps}};
  }
  void from_json(const nlohmann::json& j) {
    loss_sum = j.value("loss_sum", 0.0);
    correct = j.value("correct", int64_t{0});
    predictions = j.value("predictions", int64_t{0});
    steps = j.value("steps", int64_t{0});
  }
};

// One step's result, from either data kind.
struct StepOut {
  float loss = NAN;
  int64_t correct = 0, predictions = 0, items = 0;  // items: images or tokens (for throughput)
  std::string bad_gradient;  // --check-grads: what was not finite (the update was skipped)
};

class Trainer {
 public:
  Trainer(TrainConfig cfg, nlohmann::json saved_config, bool resume) : cfg_(std::move(cfg)), saved_(std::move(saved_config)), resume_(resume) {}
  RunResult run();

 private:
  void setup_data();
  void write_config();
  StepOut train_step(int64_t step);
  EvalResult evaluate();
  void save_checkpoint_now();
  nlohmann::json make_summary(const std::string& status, const EvalResult* test) const;
  double elapsed() const {
    return prior_seconds_ + std::chrono::duration<double>(std::chrono::steady_clock::now() - segment_start_).count();
  }
  double epoch_of(int64_t step) const { return static_cast<double>(step) / steps_per_epoch_; }

  TrainConfig cfg_;
  nlohmann::json saved_;  // config.json of a resumed run
  bool resume_;
  std::string dir_;
  bool text_ = false;

  ImageData images_;
  std::unique_ptr<data::DataLoader> loader_;
  TextData text_data_;
  Generator text_gen_;  // draws the text windows
  double unigram_ = 0.0;

  std::shared_ptr<Model> model_;
  std::unique_ptr<Optimizer> opt_;
  ScheduleOptions schedule_;
  int64_t steps_per_epoch_ = 1, total_steps_ = 0;

  int64_t step_ = 0, epoch_ = 0;
  double prior_seconds_ = 0.0, train_seconds_ = 0.0;
  int64_t items_ = 0;          // images/tokens trained on (all segments)
  double last_window_loss_ = NAN;
  Window window_;
  std::chrono::steady_clock::time_point segment_start_ = std::chrono::steady_clock::now();
  CsvLog metrics_, evals_;
  int64_t last_eval_step_ = -1;
  EvalResult last_eval_;
};

void Trainer::setup_data() {
  text_ = data::is_text_dataset(cfg_.dataset);
  if (text_) {
    text_data_ = load_text_data(cfg_);
    const int64_t T = cfg_.model.context;
    NL_CHECK(static_cast<int64_t>(text_data_.train_ids.size()) > T, "the training text of ", cfg_.dataset, " has ",
             text_data_.train_ids.size(), " characters, fewer than one window of --context ", T, " + 1");
    cfg_.model.vocab_size = text_data_.corpus.vocab_size();
    steps_per_epoch_ = std::max<int64_t>(1, static_cast<int64_t>(text_data_.train_ids.size()) / (cfg_.batch_size * T));
    text_gen_.manual_seed(data::mix_seed(cfg_.seed, 0x74657874));  // "text": its own stream
    unigram_ = unigram_entropy(text_data_.train_ids, text_data_.corpus.vocab_size());
  } else {
    images_ = load_image_data(cfg_, saved_.value("resolved", nlohmann::json::object()));
    const auto& train = images_.split.train;
    cfg_.model.input_shape = train.image_shape();
    cfg_.model.num_classes = train.num_classes;
    if (train.n < cfg_.batch_size)
      throw UsageError(fmt::format("--batch-size {} is larger than the training set ({} images{})", cfg_.batch_size,
                                   train.n, cfg_.subset ? " after --subset" : ""));
    if (cfg_.classes_per_batch > 0) {
      try {
        data::check_classes_per_batch(cfg_.classes_per_batch, train.num_classes, cfg_.batch_size);
      } catch (const Error& e) {
        throw UsageError(fmt::format("--classes-per-batch: {}", e.what()));
      }
    }
    // drop_last: every step sees a full batch, so batch statistics are equally noisy at
    // every step (a batch of 1 at the end of an epoch would make BN meaningless).
    loader_ = std::make_unique<data::DataLoader>(
        train, data::LoaderOptions{.batch_size = cfg_.batch_size, .shuffle = true, .drop_last = true,
                                   .classes_per_batch = cfg_.classes_per_batch, .seed = cfg_.seed,
                                   .augment = cfg_.augment ? data::Augmentation::cifar() : data::Augmentation::none(),
                                   .normalization = images_.normalization});
    steps_per_epoch_ = loader_->batches_per_epoch();
  }
  total_steps_ = cfg_.steps > 0 ? cfg_.steps : cfg_.epochs * steps_per_epoch_;
  // Enough rows for a learning curve, few enough that logging costs nothing.
  if (cfg_.log_every <= 0) cfg_.log_every = std::clamp<int64_t>(total_steps_ / 250, 1, 50);
}

void Trainer::write_config() {
  nlohmann::json j = config_to_json(cfg_);
  nlohmann::json resolved = {{"normlab_version", NORMLAB_VERSION},
                             {"simd", simd_level_name(simd_level())},
                             {"blas_core", blas_core_description()},
                             {"threads", num_threads()},
                             {"steps_per_epoch", steps_per_epoch_},
                             {"total_steps", total_steps_},
                             {"num_parameters", model_->num_parameters()},
                             {"model_summary", model_->name()}};
  if (text_) {
    resolved["vocab"] = data::encode_utf8(text_data_.corpus.vocab().chars());
    resolved["train_chars"] = text_data_.train_ids.size();
    resolved["val_chars"] = text_data_.corpus.val_ids().size();
    resolved["unigram_entropy_nats"] = unigram_;
  } else {
    resolved["input_normalization"] = images_.normalization.describe();
    resolved["input_mean"] = images_.normalization.mean;
    resolved["input_std"] = images_.normalization.std;
    resolved["train_images"] = images_.split.train.n;
    // Examples no batch takes in an epoch (the drop_last remainder, or the K-class leftovers).
    resolved["examples_skipped_per_epoch"] = images_.split.train.n - steps_per_epoch_ * cfg_.batch_size;
    resolved["test_images"] = images_.split.test.n;
    resolved["class_names"] = images_.split.train.class_names;
  }
  j["resolved"] = resolved;
  saved_ = j;
  write_json_atomic(dir_ + "/config.json", j);
}

StepOut Trainer::train_step(int64_t step) {
  Tensor logits;
  std::vector<int32_t> targets;
  int64_t items = 0;
  if (text_) {
    // B random windows of T+1 characters: inputs are the first T, targets the next T.
    const int64_t B = cfg_.batch_size, T = cfg_.model.context;
    const auto& ids = text_data_.train_ids;
    const auto starts = static_cast<uint64_t>(ids.size() - T);
    std::vector<int32_t> x(B * T);
    targets.resize(B * T);
    for (int64_t b = 0; b < B; ++b) {
      const auto s = static_cast<int64_t>(text_gen_.below(starts));
      for (int64_t t = 0; t < T; ++t) {
        x[b * T + t] = ids[s + t];
        targets[b * T + t] = ids[s + t + 1];
      }
    }
    const Tensor out = model_->forward_ids(x, {B, T});
    logits = out.reshape({B * T, out.size(-1)});
    items = B * T;
  } else {
    data::Batch b;
    if (!loader_->next(b)) {
      loader_->start_epoch(loader_->epoch() + 1);
      NL_CHECK(loader_->next(b), "internal: the data loader has no batch at the start of an epoch");
    }
    logits = model_->forward(b.x);
    targets = std::move(b.y);
    items = static_cast<int64_t>(targets.size());
  }
  Tensor loss = cross_entropy(logits, targets);
  const float loss_value = loss.item();
  StepOut out{loss_value, 0, static_cast<int64_t>(targets.size()), items, ""};
  if (!std::isfinite(loss_value)) return out;  // the caller stops the run; no update
  opt_->zero_grad();
  loss.backward();
  if (cfg_.check_grads) {
    for (auto& [name, p] : model_->named_parameters()) {
      const Tensor g = p.grad();
      if (!g.defined()) continue;
      const float* d = g.data();
      for (int64_t i = 0; i < g.numel(); ++i)
        if (!std::isfinite(d[i])) {
          out.bad_gradient = fmt::format("the gradient of {} is {} (element {})", name, d[i], i);
          return out;
        }
    }
  }
  if (cfg_.clip_grad_norm > 0.0f) clip_grad_norm(model_->parameters(), cfg_.clip_grad_norm);
  opt_->step();
  {
    NoGradGuard no_grad;
    out.correct = count_correct(logits.detach(), targets);
  }
  return out;
}

EvalResult Trainer::evaluate() {
  if (text_)
    return evaluate_text(*model_, text_data_.corpus.val_ids(), cfg_.batch_size, cfg_.model.context,
                         cfg_.val_batches);
  return evaluate_images(*model_, images_.split.test, images_.normalization, std::max<int64_t>(cfg_.batch_size, 256));
}

void Trainer::save_checkpoint_now() {
  TrainingPosition pos;
  pos.step = step_;
  pos.epoch = text_ ? 0 : loader_->epoch();
  pos.batch = text_ ? 0 : loader_->batch_index();
  if (!text_ && pos.batch >= loader_->batches_per_epoch()) {  // the epoch is used up
    ++pos.epoch;
    pos.batch = 0;
  }
  pos.elapsed_seconds = elapsed();
  pos.generators["model"] = model_->generator().state();
  if (text_) pos.generators["text"] = text_gen_.state();
  pos.extra = {{"window", window_.to_json()},
               {"items", items_},
               {"train_seconds", train_seconds_},
               {"last_window_loss", std::isfinite(last_window_loss_) ? nlohmann::json(last_window_loss_) : nlohmann::json()},
               {"last_eval_step", last_eval_step_},
               {"last_eval", {{"loss", last_eval_.loss}, {"accuracy", last_eval_.accuracy}}}};
  save_checkpoint(dir_ + "/train_state.safetensors", *model_, *opt_, pos);
  save_model(dir_ + "/model.safetensors", *model_, saved_);
}

nlohmann::json Trainer::make_summary(const std::string& status, const EvalResult* test) const {
  auto finite_or_null = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };
  nlohmann::json s = {{"status", status},
                      {"test_accuracy", test ? finite_or_null(test->accuracy) : nlohmann::json()},
                      {"test_loss", test ? finite_or_null(test->loss) : nlohmann::json()},
                      {"final_train_loss", finite_or_null(last_window_loss_)},
                      {"steps", step_},
                      {"epochs", epoch_of(step_)},
                      {"seconds", elapsed()},
                      {text_ ? "tokens_per_second" : "images_per_second",
                       train_seconds_ > 0 ? items_ / train_seconds_ : 0.0},
                      {"peak_rss_mb", peak_rss_mb()},
                      {"dataset", cfg_.dataset},
                      {"model", cfg_.model.name},
                      {"norm", cfg_.norm.name}};
  if (text_) {
    s["unigram_entropy_nats"] = unigram_;
    s["test_split"] = "validation (last 10% of the text)";
  }
  return s;
}

RunResult Trainer::run() {
  dir_ = cfg_.out;
  set_num_threads(cfg_.threads > 0 ? cfg_.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  setup_data();
  cfg_.model.seed = cfg_.seed;
  model_ = build_model(cfg_.model, cfg_.norm);
  opt_ = make_optimizer(cfg_, *model_);
  schedule_ = cfg_.schedule;
  schedule_.base_lr = cfg_.lr;
  schedule_.total_steps = total_steps_;
  if (schedule_.name == "step" && schedule_.step_size == 0) schedule_.step_size = std::max<int64_t>(1, total_steps_ / 3);
  try {
    validate_schedule(schedule_);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }

  const std::string ckpt = dir_ + "/train_state.safetensors";
  const bool from_checkpoint = resume_ && file_exists(ckpt);
  if (!resume_) {
    ensure_directory(dir_);
    write_config();
  }
  // Messages go to stderr with the progress; stdout stays clean for scripts.
  Progress progress(total_steps_, text_ ? "tok" : "img", cfg_.log_every);
  if (from_checkpoint) {
    const TrainingPosition pos = load_checkpoint(ckpt, *model_, *opt_);
    step_ = pos.step;
    prior_seconds_ = pos.elapsed_seconds;
    if (pos.generators.count("model")) model_->generator().set_state(pos.generators.at("model"));
    if (text_) text_gen_.set_state(pos.generators.at("text"));
    else loader_->start_epoch(pos.epoch, pos.batch);
    window_.from_json(pos.extra.value("window", nlohmann::json::object()));
    items_ = pos.extra.value("items", int64_t{0});
    train_seconds_ = pos.extra.value("train_seconds", 0.0);
    if (pos.extra.contains("last_window_loss") && pos.extra["last_window_loss"].is_number())
      last_window_loss_ = pos.extra["last_window_loss"].get<double>();
    last_eval_step_ = pos.extra.value("last_eval_step", int64_t{-1});
    if (pos.extra.contains("last_eval")) {
      last_eval_.loss = pos.extra["last_eval"].value("loss", NAN);
      last_eval_.accuracy = pos.extra["last_eval"].value("accuracy", NAN);
    }
    progress.message(fmt::format("resuming {} from step {} of {}", dir_, step_, total_steps_));
  } else if (resume_) {
    progress.message(fmt::format("{} has no checkpoint yet: starting it from step 0 with its saved config", dir_));
  }
  const std::vector<std::string> metric_cols{"step", "epoch", "train_loss", "train_acc", "lr", "seconds"};
  const std::vector<std::string> eval_cols{"epoch", "step", "test_loss", "test_acc"};
  if (from_checkpoint) {
    // Rows written after the checkpoint belong to steps that will be redone.
    metrics_.open_resume(dir_ + "/metrics.csv", metric_cols, step_, 0);
    evals_.open_resume(dir_ + "/eval.csv", eval_cols, step_, 1);
  } else {
    metrics_.open_fresh(dir_ + "/metrics.csv", metric_cols);
    evals_.open_fresh(dir_ + "/eval.csv", eval_cols);
  }
  if (step_ >= total_steps_) {
    progress.message(fmt::format("{} already finished ({} steps); nothing to do", dir_, step_));
    RunResult r{"ok", 0, dir_, read_json(dir_ + "/summary.json")};
    return r;
  }

  if (!from_checkpoint) {
    progress.message(fmt::format("normlab {}: {} on {}, norm {}, {} parameters; {} steps ({} per epoch), batch {}, "
                                 "{} lr {}, {} threads, SIMD {}, BLAS {}",
                                 NORMLAB_VERSION, cfg_.model.name, cfg_.dataset, cfg_.norm.name,
                                 model_->num_parameters(), total_steps_, steps_per_epoch_, cfg_.batch_size,
                                 cfg_.optimizer, cfg_.lr, num_threads(), simd_level_name(simd_level()),
                                 blas_core_name()));
    if (text_)
      progress.message(fmt::format("unigram-entropy baseline: {:.4f} nats/char (a model that ignores context; "
                                   "uniform over {} chars would be {:.4f})",
                                   unigram_, cfg_.model.vocab_size, std::log(static_cast<double>(cfg_.model.vocab_size))));
    else
      progress.message(fmt::format("input normalization: {}", images_.normalization.describe()));
  }

  StopSignalScope signals;
  model_->train();
  segment_start_ = std::chrono::steady_clock::now();  // "seconds" counts training, not data loading
  std::string status = "ok";
  int exit_code = 0;
  const int64_t checkpoint_every = cfg_.checkpoint_every > 0 ? cfg_.checkpoint_every : steps_per_epoch_;
  const int64_t eval_every = text_ ? (cfg_.eval_every > 0 ? cfg_.eval_every : steps_per_epoch_)
                                   : (cfg_.eval_every_epoch ? steps_per_epoch_ : 0);
  auto record_eval = [&](const EvalResult& e) {
    last_eval_ = e;
    last_eval_step_ = step_;
    evals_.row({num(epoch_of(step_)), std::to_string(step_), num(e.loss), num(e.accuracy)});
    progress.message(fmt::format("step {} (epoch {:.2f}): {} loss {:.4f}, accuracy {:.2f}%", step_, epoch_of(step_),
                                 text_ ? "validation" : "test", e.loss, 100.0 * e.accuracy));
  };

  while (step_ < total_steps_) {
    const float lr = schedule_lr(schedule_, step_);
    opt_->set_lr(lr);
    const auto t0 = std::chrono::steady_clock::now();
    const StepOut out = train_step(step_);
    if (!out.bad_gradient.empty()) {
      status = fmt::format("diverged at step {}", step_ + 1);
      progress.message(fmt::format("error: {} at step {} (--check-grads); stopping", out.bad_gradient, step_ + 1));
      exit_code = 3;
      break;
    }
    if (!std::isfinite(out.loss)) {
      status = fmt::format("diverged at step {}", step_ + 1);
      progress.message(fmt::format("error: the training loss is {} at step {}: the run diverged (try a smaller "
                                   "--lr, --warmup-steps or --clip-grad-norm); stopping",
                                   out.loss, step_ + 1));
      exit_code = 3;
      break;
    }
    train_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++step_;
    items_ += out.items;
    window_.loss_sum += out.loss;
    window_.correct += out.correct;
    window_.predictions += out.predictions;
    ++window_.steps;
    epoch_ = (step_ - 1) / steps_per_epoch_;
    progress.update({step_, epoch_, window_.loss_sum / window_.steps,
                     static_cast<double>(window_.correct) / std::max<int64_t>(1, window_.predictions),
                     train_seconds_ > 0 ? items_ / train_seconds_ : 0.0, lr});
    if (step_ % cfg_.log_every == 0 || step_ == total_steps_) {
      last_window_loss_ = window_.loss_sum / window_.steps;
      metrics_.row({std::to_string(step_), num(epoch_of(step_)), num(last_window_loss_),
                    num(static_cast<double>(window_.correct) / std::max<int64_t>(1, window_.predictions)), num(lr),
                    num(elapsed())});
      window_ = Window{};
    }
    if (cfg_.simulate_kill_at_step > 0 && step_ == cfg_.simulate_kill_at_step) {
      progress.finish();
      std::fprintf(stderr, "simulated kill at step %lld\n", static_cast<long long>(step_));
      std::_Exit(137);  // like kill -9: no destructors, no checkpoint, no summary
    }
    if (eval_every > 0 && step_ % eval_every == 0 && step_ != total_steps_) record_eval(evaluate());
    if (step_ % checkpoint_every == 0 && step_ != total_steps_) save_checkpoint_now();
    if (g_stop_requested) {
      status = "interrupted";
      exit_code = 130;
      progress.message(fmt::format("interrupted at step {}: checkpoint saved, continue with "
                                   "`normlab train --resume {}`", step_, dir_));
      break;
    }
  }
  progress.finish();

  EvalResult test{NAN, NAN, 0};
  if (exit_code == 0) {
    if (last_eval_step_ != step_) record_eval(evaluate());
    test = last_eval_;
  } else if (last_eval_step_ >= 0) {
    test = last_eval_;  // the last evaluation before the run stopped
  }
  // A diverged run keeps its last good checkpoint; the others save where they stopped.
  if (exit_code != 3) save_checkpoint_now();
  nlohmann::json summary = make_summary(status, exit_code == 0 || last_eval_step_ >= 0 ? &test : nullptr);
  if (exit_code != 0 && last_eval_step_ >= 0) summary["test_step"] = last_eval_step_;
  write_json_atomic(dir_ + "/summary.json", summary);
  return {status, exit_code, dir_, summary};
}

}  // namespace

RunResult train_run(const TrainConfig& cfg_in) {
  TrainConfig cfg = cfg_in;
  if (cfg.out.empty()) cfg.out = default_out_dir(cfg);
  validate(cfg);
  if (!cfg.overwrite && file_exists(cfg.out + "/config.json"))
    throw UsageError(fmt::format("--out {} already holds a run (config.json); continue it with --resume {}, "
                                 "choose another --out, or pass --overwrite to replace it",
                                 cfg.out, cfg.out));
  Trainer t(cfg, nlohmann::json::object(), false);
  return t.run();
}

RunResult resume_run(const std::string& dir, int threads, const std::string& data_dir) {
  const nlohmann::json saved = read_json(dir + "/config.json");
  TrainConfig cfg = config_from_json(saved);
  cfg.out = dir;  // the directory may have been moved since
  // Same thread count as the original run unless told otherwise: results depend on it.
  if (threads > 0) cfg.threads = threads;
  else if (saved.contains("resolved")) cfg.threads = saved["resolved"].value("threads", cfg.threads);
  if (!data_dir.empty()) cfg.data_dir = data_dir;
  validate(cfg);
  Trainer t(cfg, saved, true);
  return t.run();
}

}  // namespace nl::app
