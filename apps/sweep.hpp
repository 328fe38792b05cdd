// normlab apps: `normlab sweep` runs one `normlab train` per (variant, batch size, seed) as
// child processes (and per statistics batch, with --stat-batch-sizes), `normlab report` turns
// a sweep directory into figures and tables, and `normlab export-results` copies a sweep's
// finished runs compactly (no checkpoints, metrics.csv thinned) into a directory that can be
// committed; `--results DIR` makes sweep and report treat the runs found there as finished.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/train_config.hpp"

namespace nl {

// One line of a sweep: a label and the train flags that make it (e.g. {"gn", {"--norm", "gn"}}).
struct SweepVariant {
  std::string label;
  std::vector<std::string> train_args;
};

struct SweepPlan {
  std::string out_dir;
  std::vector<SweepVariant> variants;
  std::vector<int> batch_sizes;
  std::vector<int> seeds;
  // --stat-batch-sizes: variants that take --stat-batch (bn, mobn, brn, wn + mean-only BN) run
  // once per statistics batch b <= B; the others once per batch size. Empty: not an axis.
  std::vector<int> stat_batches;
  std::string results_dir;  // --results: finished runs there count as done (sweep) and are read (report)
  std::string lr_scaling = "linear";  // linear | sqrt | none
  double base_lr = app::kDefaultLr;
  int base_batch = static_cast<int>(app::kDefaultBatchSize);
  int jobs = 2, threads = 1;
  bool eval_modes = true;                  // run `normlab eval` on BN-family runs (running/batch/precise)
  std::vector<std::string> common_args;    // passed to every train run (model, dataset, epochs, ...)
  std::string description;                 // what the preset reproduces, for report.md
};

// One run of a plan.
struct PlannedRun {
  std::string name, label;
  int batch_size = 0, seed = 0;
  int stat_batch = 0;             // --stat-batch given to the run; 0 = not given (the whole batch)
  int ghost_batch = 0;            // gbn's --ghost-batch in the variant's own arguments: its statistics batch
  bool batch_statistics = false;  // a BN-family variant: its statistics come from the batch
  double lr = 0;
  std::vector<std::string> train_args;  // everything after `normlab train`
  int effective_stat_batch() const {
    if (stat_batch > 0) return stat_batch;
    return ghost_batch > 0 && ghost_batch < batch_size ? ghost_batch : batch_size;
  }
};

// Learning rate for a batch size under the plan's scaling rule.
double scaled_lr(const SweepPlan& plan, int batch_size);
// The run directory name of one run: "<label>-b<B>-s<seed>", or "<label>-b<B>-sb<b>-s<seed>"
// with a statistics batch (stat_batch > 0).
std::string run_name(const std::string& label, int batch_size, int seed, int stat_batch = 0);
// Every run of the plan, small batches first within each seed.
std::vector<PlannedRun> planned_runs(const SweepPlan& plan);
// sweep.json, the plan as written into the sweep directory (older files: no stat axis).
nlohmann::json plan_to_json(const SweepPlan& plan);
SweepPlan plan_from_json(const nlohmann::json& j, const std::string& out_dir);
// A sweep directory filled in parts (--norms bn today, --norms gn or --seeds 1 tomorrow, or on
// another machine) holds the union of the parts' plans: their variants, batch sizes, seeds and
// statistics batches. The parts must otherwise train alike (the same common and per-variant train
// flags, whatever their order and --data-dir; the same lr rule; both with or both without the
// statistics-batch axis): a part that does not is refused (app::UsageError) rather than mixed in.
// Keeps `existing`'s out_dir and description, `added`'s jobs, threads, results_dir and eval_modes.
SweepPlan merge_plans(const SweepPlan& existing, const SweepPlan& added);
// `s` with every absolute path in it cut to its last component ("/a/b/data" -> "data",
// "text:/a/b/x.txt" -> "text:x.txt"): what export-results writes instead of this machine's paths.
std::string cut_machine_paths(const std::string& s);
// The parsed file, or null if it is missing or not (yet) valid JSON (a half-written file).
nlohmann::json read_json_or_null(const std::filesystem::path& path);
// A run directory whose summary.json says "ok" or "diverged ...".
bool run_finished(const std::filesystem::path& run_dir);
// Where a run's files are: OUT/<name> if it finished there, else RESULTS/<name> if it finished
// there, else OUT/<name> (not finished anywhere).
std::filesystem::path run_location(const SweepPlan& plan, const std::string& name);
// OUT/results.csv from the runs' summaries (wherever run_location finds them).
void write_results_csv(const SweepPlan& plan, const std::vector<PlannedRun>& runs);
// Named presets (the papers at CPU scale); throws nl::Error listing valid names.
SweepPlan sweep_preset(const std::string& name, const std::string& out_dir);
std::vector<std::string> sweep_preset_names();

// The bodies of `normlab report` (apps/report.cpp) and `normlab export-results`
// (apps/export_results.cpp); their flags are in the same files (add_*_command).
int report_main(const std::string& sweep_dir, const std::string& results_dir);

}  // namespace nl
