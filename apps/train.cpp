// normlab apps: the training loop (images and character-level text). See train.hpp.
//
// Trainer::run, top to bottom:
//   set_up            data, model, optimizer, schedule (train_data, train_setup)
//   start / resume    a fresh run directory, or the state of the last checkpoint
//   train             train_step until the last step, with logging, evaluation and
//                     checkpoints in between; stops early on divergence or Ctrl-C
//   finish            the final evaluation, checkpoint and summary.json
//
// Data parallel (`mpirun -np K normlab train ... --batch-size b`): every rank runs this same
// loop on its part of each global batch of K*b (train_data.hpp), with the same parameters
// (broadcast from rank 0 at the start) and the same update (train_step.hpp). Rank 0 alone
// writes the run directory, prints, and evaluates; so BatchNorm's running statistics in
// model.safetensors are rank 0's (PyTorch DDP's convention: its buffers are rank 0's).
// A failure during set-up on any rank is reported by every rank, naming it (check_all).
#include "apps/train.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "apps/progress.hpp"
#include "apps/run_common.hpp"
#include "apps/run_dir.hpp"
#include "apps/train_data.hpp"
#include "apps/train_diagnostics.hpp"
#include "apps/train_record.hpp"
#include "apps/train_setup.hpp"
#include "apps/train_step.hpp"
#include "core/distributed.hpp"
#include "core/kernels/kernels.hpp"
#include "core/parallel.hpp"
#include "core/runtime_env.hpp"
#include "data/loader.hpp"
#include "dist/launch.hpp"

namespace nl::app {

namespace {

// ---------------------------------------------------------------- Ctrl-C

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

// ---------------------------------------------------------------- the run

struct Outcome {
  std::string status;  // "ok" | "diverged at step N" | "interrupted"
  int exit_code = 0;   // 0, 3, 130
};

class Trainer {
 public:
  Trainer(TrainConfig cfg, nlohmann::json saved_config, bool resume)
      : cfg_(std::move(cfg)),
        config_(std::move(saved_config)),
        resume_(resume),
        comm_(dist::world()),
        record_(cfg_.out, comm_.rank() == 0),
        diagnostics_(0, false) {}
  RunResult run();

 private:
  void set_up();
  void set_up_everywhere();
  nlohmann::json describe_distribution() const;
  void decorrelate_dropout(uint64_t position);
  void start();
  void resume_from_checkpoint();
  std::unique_ptr<Progress> make_progress(int64_t first_step) const;
  Outcome train();
  // Why the run must stop after this step ("" = it goes on).
  std::string divergence(const StepResult& out) const;
  void count_step(const StepResult& out, float lr);
  void evaluate();
  void save_checkpoint() { record_.save_checkpoint(*model_, *opt_, *data_, totals_, elapsed(), config_); }
  RunResult finish(const Outcome& outcome);
  nlohmann::json check_ranks_agree();

  double elapsed() const {
    return totals_.seconds_before +
           std::chrono::duration<double>(std::chrono::steady_clock::now() - segment_start_).count();
  }
  double epoch_of(int64_t step) const { return static_cast<double>(step) / data_->steps_per_epoch(); }

  TrainConfig cfg_;
  nlohmann::json config_;  // what config.json holds (read back for a resumed run)
  bool resume_;
  dist::Communicator& comm_;
  RunRecord record_;
  DiagnosticsLog diagnostics_;  // --diagnostics (made in set_up, once --log-every is resolved)

  std::unique_ptr<TrainingData> data_;
  std::shared_ptr<Model> model_;
  std::unique_ptr<Optimizer> opt_;
  ScheduleOptions schedule_;
  int64_t total_steps_ = 0;
  std::unique_ptr<Progress> progress_;  // messages go to stderr with the progress; stdout stays clean

  RunTotals totals_;
  double comm_seconds_ = 0.0;  // data parallel: time in all-reduces during this process's steps
  int64_t steps_here_ = 0;
  std::chrono::steady_clock::time_point segment_start_ = std::chrono::steady_clock::now();
};

RunResult Trainer::run() {
  set_up_everywhere();
  const bool from_checkpoint = resume_ && file_exists(record_.checkpoint_path());
  std::string error;
  try {
    if (from_checkpoint) resume_from_checkpoint();
    else start();
  } catch (const std::exception& e) {
    if (comm_.size() == 1) throw;
    error = e.what();
  }
  dist::check_all(error, comm_);
  if (totals_.step >= total_steps_) {
    progress_->message(fmt::format("{} already finished ({} steps); nothing to do", record_.dir(), totals_.step));
    return {"ok", 0, record_.dir(), read_json(record_.dir() + "/summary.json")};
  }
  const Outcome outcome = train();
  progress_->finish();
  return finish(outcome);
}

// set_up on every rank; one rank's failure (say, it cannot read its data) ends all of them
// with the same message naming that rank. Then every rank starts from rank 0's weights.
void Trainer::set_up_everywhere() {
  if (comm_.size() == 1) return set_up();
  std::string error;
  try {
    set_up();
  } catch (const std::exception& e) {
    error = e.what();
  }
  dist::check_all(error, comm_);
  std::vector<Tensor> state = model_->parameters();
  for (auto& [name, b] : model_->named_buffers()) state.push_back(b);
  dist::broadcast_tensors(state, 0, comm_);
  decorrelate_dropout(0);
}

// Ranks must not draw the same dropout masks for different examples: rank r > 0 reseeds the
// model's generator from (seed, r, step). (Dropout is therefore not example-for-example the
// one-process run's; everything else is.)
void Trainer::decorrelate_dropout(uint64_t position) {
  if (comm_.rank() == 0) return;
  model_->generator().manual_seed(data::mix_seed(cfg_.seed, 0x72616e6b /* "rank" */, comm_.rank(), position));
}

nlohmann::json Trainer::describe_distribution() const {
  return {{"world_size", comm_.size()},
          {"global_batch_size", comm_.size() * cfg_.batch_size},
          {"communicator", comm_.name()}};
}

void Trainer::set_up() {
  // Under mpirun the default thread count shares the cores among this machine's ranks.
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  set_num_threads(cfg_.threads > 0 ? cfg_.threads : std::max(1, cores / dist::local_ranks()));
  data_ = std::make_unique<TrainingData>(cfg_, config_.value("resolved", nlohmann::json::object()), comm_.rank(),
                                         comm_.size());
  total_steps_ = cfg_.steps > 0 ? cfg_.steps : cfg_.epochs * data_->steps_per_epoch();
  // Enough rows for a learning curve, few enough that logging costs nothing.
  if (cfg_.log_every <= 0) cfg_.log_every = std::clamp<int64_t>(total_steps_ / 250, 1, 50);
  if (cfg_.diagnostics && cfg_.diagnostics_every <= 0) cfg_.diagnostics_every = cfg_.log_every;
  diagnostics_ = DiagnosticsLog(cfg_.diagnostics ? cfg_.diagnostics_every : 0, comm_.rank() == 0,
                                split_layer_list(cfg_.diagnostics_layers));
  cfg_.model.seed = cfg_.seed;  // --seed decides the initialization too (and config.json says so)
  model_ = build_model(cfg_.model, cfg_.norm);
  diagnostics_.check_layers(*model_);
  opt_ = make_optimizer(cfg_, *model_);
  schedule_ = make_schedule(cfg_, total_steps_);
  progress_ = make_progress(0);
}

std::unique_ptr<Progress> Trainer::make_progress(int64_t first_step) const {
  return std::make_unique<Progress>(total_steps_, data_->unit(), cfg_.log_every, first_step, comm_.rank() != 0);
}

// A fresh run, or a resumed one that never reached its first checkpoint.
void Trainer::start() {
  if (resume_) {
    progress_->message(
        fmt::format("{} has no checkpoint yet: starting it from step 0 with its saved config", record_.dir()));
  } else {
    ensure_directory(record_.dir());
    config_ = record_.write_config(cfg_, *data_, *model_, total_steps_, describe_distribution());
  }
  record_.open_logs(false, 0);
  diagnostics_.open(record_.dir(), false, 0);
  progress_->message(fmt::format("normlab {}: {} on {}, norm {}, {} parameters; {} steps ({} per epoch), batch {}, "
                                 "{} lr {}, {} threads (OpenMP wait {}), SIMD {}, BLAS {}, subnormals {}",
                                 NORMLAB_VERSION, cfg_.model.name, cfg_.dataset, cfg_.norm.name,
                                 model_->num_parameters(), total_steps_, data_->steps_per_epoch(), cfg_.batch_size,
                                 cfg_.optimizer, cfg_.lr, num_threads(), wait_policy_env().description(), simd_level_name(simd_level()),
                                 blas_core_name(), denormals_description()));
  if (comm_.size() > 1)
    progress_->message(fmt::format("data parallel: {} ranks x batch {} = global batch {} ({}); BatchNorm running "
                                   "statistics saved are rank 0's",
                                   comm_.size(), cfg_.batch_size, comm_.size() * cfg_.batch_size, comm_.name()));
  progress_->message(data_->describe_line());
}

void Trainer::resume_from_checkpoint() {
  totals_ = record_.load_checkpoint(*model_, *opt_, *data_);  // every rank reads rank 0's checkpoint
  decorrelate_dropout(static_cast<uint64_t>(totals_.step));
  progress_ = make_progress(totals_.step);  // its ETA from this process's steps, not the run's
  progress_->message(fmt::format("resuming {} from step {} of {}", record_.dir(), totals_.step, total_steps_));
  record_.open_logs(true, totals_.step);
  diagnostics_.open(record_.dir(), true, totals_.step);
}

Outcome Trainer::train() {
  StopSignalScope signals;
  model_->train();
  segment_start_ = std::chrono::steady_clock::now();  // "seconds" counts training, not data loading
  const int64_t steps_per_epoch = data_->steps_per_epoch();
  const int64_t checkpoint_every = cfg_.checkpoint_every > 0 ? cfg_.checkpoint_every : steps_per_epoch;
  const int64_t eval_every = data_->is_text() ? (cfg_.eval_every > 0 ? cfg_.eval_every : steps_per_epoch)
                                              : (cfg_.eval_every_epoch ? steps_per_epoch : 0);
  const StepOptions step_options{cfg_.check_grads, cfg_.clip_grad_norm, &comm_, &g_stop_requested};
  while (totals_.step < total_steps_) {
    const float lr = schedule_lr(schedule_, totals_.step);
    opt_->set_lr(lr);
    const auto t0 = std::chrono::steady_clock::now();
    diagnostics_.before_step(*model_, totals_.step + 1);
    const StepResult out = train_step(*model_, *opt_, data_->next(), step_options);
    if (const std::string why = divergence(out); !why.empty()) {
      progress_->message(why);
      return {fmt::format("diverged at step {}", totals_.step + 1), 3};
    }
    if (const std::string warning = diagnostics_.after_step(*model_, totals_.step + 1); !warning.empty())
      progress_->message(warning);
    totals_.train_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    count_step(out, lr);
    comm_seconds_ += out.comm_seconds;
    ++steps_here_;
    const int64_t step = totals_.step;
    if (cfg_.simulate_kill_at_step > 0 && step == cfg_.simulate_kill_at_step &&
        (cfg_.simulate_kill_rank < 0 || cfg_.simulate_kill_rank == comm_.rank())) {
      progress_->finish();
      std::fprintf(stderr, "simulated kill of rank %d at step %lld\n", comm_.rank(), static_cast<long long>(step));
      std::_Exit(137);  // like kill -9: no destructors, no checkpoint, no summary
    }
    const bool last = step == total_steps_;  // the final evaluation and checkpoint are finish()'s
    if (!last && eval_every > 0 && step % eval_every == 0) evaluate();
    if (!last && step % checkpoint_every == 0) save_checkpoint();
    if (out.stop) {  // decided by all ranks together (train_step), so they all stop here
      progress_->message(fmt::format("interrupted at step {}: checkpoint saved, continue with "
                                     "`normlab train --resume {}`",
                                     step, record_.dir()));
      return {"interrupted", 130};
    }
  }
  return {"ok", 0};
}

std::string Trainer::divergence(const StepResult& out) const {
  const int64_t step = totals_.step + 1;
  if (!out.bad_gradient.empty())
    return fmt::format("error: {} at step {} (--check-grads); stopping", out.bad_gradient, step);
  if (!std::isfinite(out.loss))
    return fmt::format("error: the training loss is {} at step {}: the run diverged (try a smaller --lr, "
                       "--warmup-steps or --clip-grad-norm); stopping",
                       out.loss, step);
  return "";
}

// Adds a finished step to the totals and the progress line; every log_every steps the
// logging window becomes a metrics.csv row.
void Trainer::count_step(const StepResult& out, float lr) {
  RunTotals& t = totals_;
  ++t.step;
  t.items += out.predictions;
  t.window.loss_sum += out.loss;
  t.window.correct += out.correct;
  t.window.predictions += out.predictions;
  ++t.window.steps;
  progress_->update({t.step, (t.step - 1) / data_->steps_per_epoch(), t.window.mean_loss(), t.window.accuracy(),
                     t.train_seconds > 0 ? t.items / t.train_seconds : 0.0, lr});
  if (t.step % cfg_.log_every == 0 || t.step == total_steps_) {
    t.last_window_loss = t.window.mean_loss();
    record_.log_window(t, epoch_of(t.step), lr, elapsed());
    t.window = {};
  }
}

void Trainer::evaluate() {
  // Rank 0 reports for the run; the others would only repeat its numbers (or, with per-worker
  // BatchNorm, use running statistics that are not saved).
  if (comm_.rank() == 0) totals_.last_eval = data_->evaluate(*model_);
  totals_.last_eval_step = totals_.step;
  record_.log_eval(totals_, epoch_of(totals_.step));
  progress_->message(fmt::format("step {} (epoch {:.2f}): {} loss {:.4f}, accuracy {:.2f}%", totals_.step,
                                 epoch_of(totals_.step), data_->is_text() ? "validation" : "test",
                                 totals_.last_eval.loss, 100.0 * totals_.last_eval.accuracy));
}

// A finished run is evaluated at its last step; a stopped one keeps its last evaluation.
// A diverged run keeps its last good checkpoint; the others save where they stopped.
RunResult Trainer::finish(const Outcome& outcome) {
  if (outcome.exit_code == 0 && totals_.last_eval_step != totals_.step) evaluate();
  if (outcome.exit_code != 3) save_checkpoint();
  const nlohmann::json summary =
      record_.write_summary(outcome.status, cfg_, *data_, totals_, elapsed(), check_ranks_agree());
  return {outcome.status, outcome.exit_code, record_.dir(), summary};
}

// Data parallel: every rank must end with the same parameters, bit for bit (same start, same
// averaged gradient, same update). A checksum per rank goes into summary.json; a mismatch
// would mean a bug, and the run says so instead of saving rank 0's weights silently.
nlohmann::json Trainer::check_ranks_agree() {
  if (comm_.size() == 1) return nlohmann::json::object();
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the bytes of every parameter
  for (const Tensor& p : model_->parameters()) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(p.data());
    for (int64_t i = 0; i < p.numel() * static_cast<int64_t>(sizeof(float)); ++i) h = (h ^ bytes[i]) * 1099511628211ull;
  }
  const auto mine = static_cast<int64_t>(h);
  std::vector<int64_t> all(comm_.size());
  comm_.allgather(&mine, 1, all.data());
  const bool agree = std::all_of(all.begin(), all.end(), [&](int64_t v) { return v == all[0]; });
  if (!agree) progress_->message("error: the ranks' parameters differ at the end of the run (a bug; see summary.json)");
  std::vector<std::string> hex;
  for (int64_t v : all) hex.push_back(fmt::format("{:016x}", static_cast<uint64_t>(v)));
  // Rank 0's time in the step's collectives, waiting for slower ranks included.
  const double comm_ms = steps_here_ > 0 ? 1000.0 * comm_seconds_ / steps_here_ : 0.0;
  return {{"world_size", comm_.size()}, {"parameter_checksums", hex}, {"parameters_identical_across_ranks", agree},
          {"communication_ms_per_step", comm_ms}};
}

}  // namespace

// SyncBatchNorm only means something across ranks; asked for in one process it is a mistake
// (PyTorch refuses too: its SyncBatchNorm needs an initialized process group).
static void check_sync_bn_has_ranks(const TrainConfig& cfg) {
  if (cfg.norm.name != "syncbn") return;
  if (!dist::built_with_mpi())
    throw UsageError("--sync-bn (--norm syncbn) needs MPI, but this normlab was built without it "
                     "(cmake -DNORMLAB_MPI=OFF or no libopenmpi-dev): install it with scripts/install_deps.sh, "
                     "rebuild, and start the run with mpirun -np K");
  if (!dist::launched_by_mpirun())
    throw UsageError("--sync-bn (--norm syncbn) computes BatchNorm statistics across the ranks of a data-parallel "
                     "run: start it with `mpirun -np K normlab train ...` (in one process use --norm bn)");
}

RunResult train_run(const TrainConfig& cfg_in) {
  TrainConfig cfg = cfg_in;
  if (cfg.out.empty()) cfg.out = default_out_dir(cfg);
  validate_config(cfg);
  check_sync_bn_has_ranks(cfg);
  if (!cfg.overwrite && file_exists(cfg.out + "/config.json"))
    throw UsageError(fmt::format("--out {} already holds a run (config.json); continue it with --resume {}, "
                                 "choose another --out, or pass --overwrite to replace it",
                                 cfg.out, cfg.out));
  return Trainer(cfg, nlohmann::json::object(), false).run();
}

RunResult resume_run(const std::string& dir, int threads, const std::string& data_dir) {
  const nlohmann::json saved = read_json(dir + "/config.json");
  TrainConfig cfg = config_from_json(saved);
  cfg.out = dir;  // the directory may have been moved since
  // Same thread count as the original run unless told otherwise: results depend on it.
  if (threads > 0) cfg.threads = threads;
  else if (saved.contains("resolved")) cfg.threads = saved["resolved"].value("threads", cfg.threads);
  if (!data_dir.empty()) cfg.data_dir = data_dir;
  validate_config(cfg);
  check_sync_bn_has_ranks(cfg);
  return Trainer(cfg, saved, true).run();
}

}  // namespace nl::app
