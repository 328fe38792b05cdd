// normlab apps: a training run's files. See train_record.hpp.
#include "apps/train_record.hpp"

#include <fmt/format.h>

#include "core/kernels/kernels.hpp"
#include "core/parallel.hpp"
#include "core/runtime_env.hpp"

namespace nl::app {

namespace {

std::string num(double v) { return std::isfinite(v) ? fmt::format("{:.6g}", v) : std::string("nan"); }
nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

const std::vector<std::string> kMetricColumns{"step", "epoch", "train_loss", "train_acc", "lr", "seconds"};
const std::vector<std::string> kEvalColumns{"epoch", "step", "test_loss", "test_acc"};

}  // namespace

nlohmann::json RunRecord::write_config(const TrainConfig& cfg, const TrainingData& data, const Model& model,
                                       int64_t total_steps, const nlohmann::json& distributed) {
  nlohmann::json j = config_to_json(cfg);
  nlohmann::json resolved = data.describe();
  resolved["normlab_version"] = NORMLAB_VERSION;
  resolved["simd"] = simd_level_name(simd_level());
  resolved["blas_core"] = blas_core_description();
  resolved["omp_wait_policy"] = wait_policy_env().description();
  resolved["denormals"] = denormals_description();
  resolved["threads"] = num_threads();
  resolved["steps_per_epoch"] = data.steps_per_epoch();
  resolved["total_steps"] = total_steps;
  resolved["num_parameters"] = model.num_parameters();
  resolved["model_summary"] = model.name();
  resolved.update(distributed);
  j["resolved"] = resolved;
  if (writer_) write_json_atomic(dir_ + "/config.json", j);
  return j;
}

void RunRecord::open_logs(bool resume, int64_t step) {
  if (!writer_) return;
  if (resume) {
    // Rows written after the checkpoint belong to steps that will be redone.
    metrics_.open_resume(dir_ + "/metrics.csv", kMetricColumns, step, 0);
    evals_.open_resume(dir_ + "/eval.csv", kEvalColumns, step, 1);
  } else {
    metrics_.open_fresh(dir_ + "/metrics.csv", kMetricColumns);
    evals_.open_fresh(dir_ + "/eval.csv", kEvalColumns);
  }
}

void RunRecord::log_window(const RunTotals& t, double epoch, double lr, double seconds) {
  if (!writer_) return;
  metrics_.row({std::to_string(t.step), num(epoch), num(t.window.mean_loss()), num(t.window.accuracy()), num(lr),
                num(seconds)});
}

void RunRecord::log_eval(const RunTotals& t, double epoch) {
  if (!writer_) return;
  evals_.row({num(epoch), std::to_string(t.step), num(t.last_eval.loss), num(t.last_eval.accuracy)});
}

void RunRecord::save_checkpoint(Model& model, Optimizer& optimizer, const TrainingData& data,
                                const RunTotals& t, double seconds, const nlohmann::json& config) const {
  if (!writer_) return;
  TrainingPosition pos;
  pos.step = t.step;
  data.save_position(pos);
  pos.elapsed_seconds = seconds;
  pos.generators["model"] = model.generator().state();
  pos.extra = {{"window",
                {{"loss_sum", t.window.loss_sum}, {"correct", t.window.correct},
                 {"predictions", t.window.predictions}, {"steps", t.window.steps}}},
               {"items", t.items},
               {"train_seconds", t.train_seconds},
               {"last_window_loss", finite_or_null(t.last_window_loss)},
               {"last_eval_step", t.last_eval_step},
               {"last_eval", {{"loss", t.last_eval.loss}, {"accuracy", t.last_eval.accuracy}}}};
  nl::app::save_checkpoint(checkpoint_path(), model, optimizer, pos);
  save_model(dir_ + "/model.safetensors", model, config);
}

RunTotals RunRecord::load_checkpoint(Model& model, Optimizer& optimizer, TrainingData& data) const {
  const TrainingPosition pos = nl::app::load_checkpoint(checkpoint_path(), model, optimizer);
  if (pos.generators.count("model")) model.generator().set_state(pos.generators.at("model"));
  data.restore(pos);
  RunTotals t;
  t.step = pos.step;
  t.seconds_before = pos.elapsed_seconds;
  const nlohmann::json& x = pos.extra;
  const nlohmann::json w = x.value("window", nlohmann::json::object());
  t.window = {w.value("loss_sum", 0.0), w.value("correct", int64_t{0}), w.value("predictions", int64_t{0}),
              w.value("steps", int64_t{0})};
  t.items = x.value("items", int64_t{0});
  t.train_seconds = x.value("train_seconds", 0.0);
  if (x.contains("last_window_loss") && x["last_window_loss"].is_number())
    t.last_window_loss = x["last_window_loss"].get<double>();
  t.last_eval_step = x.value("last_eval_step", int64_t{-1});
  if (x.contains("last_eval")) {
    t.last_eval.loss = x["last_eval"].value("loss", NAN);
    t.last_eval.accuracy = x["last_eval"].value("accuracy", NAN);
  }
  return t;
}

nlohmann::json RunRecord::write_summary(const std::string& status, const TrainConfig& cfg, const TrainingData& data,
                                        const RunTotals& t, double seconds, const nlohmann::json& extra) const {
  const bool evaluated = t.last_eval_step >= 0;
  nlohmann::json s = {{"status", status},
                      {"test_accuracy", evaluated ? finite_or_null(t.last_eval.accuracy) : nlohmann::json()},
                      {"test_loss", evaluated ? finite_or_null(t.last_eval.loss) : nlohmann::json()},
                      {"final_train_loss", finite_or_null(t.last_window_loss)},
                      {"steps", t.step},
                      {"epochs", static_cast<double>(t.step) / data.steps_per_epoch()},
                      {"seconds", seconds},
                      {fmt::format("{}_per_second", data.items_name()),
                       t.train_seconds > 0 ? t.items / t.train_seconds : 0.0},
                      {"peak_rss_mb", peak_rss_mb()},
                      {"dataset", cfg.dataset},
                      {"model", cfg.model.name},
                      {"norm", cfg.norm.name}};
  s.update(data.summary_fields());
  s.update(extra);
  if (status != "ok" && evaluated) s["test_step"] = t.last_eval_step;
  if (writer_) write_json_atomic(dir_ + "/summary.json", s);
  return s;
}

}  // namespace nl::app
