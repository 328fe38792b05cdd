// normlab apps: `normlab sweep` runs one `normlab train` per (variant, batch size, seed) as
// child processes, and `normlab report` turns a sweep directory into figures and tables.
#pragma once

#include <string>
#include <vector>

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
  std::string lr_scaling = "linear";  // linear | sqrt | none
  double base_lr = 0.05;
  int base_batch = 32;
  int jobs = 2, threads = 1;
  bool eval_modes = true;                  // run `normlab eval` on BN-family runs (running/batch/precise)
  std::vector<std::string> common_args;    // passed to every train run (model, dataset, epochs, ...)
  std::string description;                 // what the preset reproduces, for report.md
};

// Learning rate for a batch size under the plan's scaling rule.
double scaled_lr(const SweepPlan& plan, int batch_size);
// The run directory name of one run: "<label>-b<B>-s<seed>".
std::string run_name(const std::string& label, int batch_size, int seed);
// Named presets (the papers at CPU scale); throws nl::Error listing valid names.
SweepPlan sweep_preset(const std::string& name, const std::string& out_dir);
std::vector<std::string> sweep_preset_names();

int sweep_main(int argc, char** argv);
int report_main(int argc, char** argv);

}  // namespace nl
