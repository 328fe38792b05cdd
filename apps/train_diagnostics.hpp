// normlab apps: `train --diagnostics`, what each norm layer does while the model trains.
//
//   DIR/diagnostics.csv    step,layer,quantity,value   (long format: one row per quantity)
//
// Every --diagnostics-every steps (default: --log-every) the step's training forward is
// observed (layers/diagnostics.hpp says what each quantity is and how it is sampled), the
// gradient norms are read after its backward (weights: after the data-parallel average and
// any clipping), and the rows are appended under the step's number (1-based, as metrics.csv).
// layer is the norm's dotted module path ("3", "stage1.0.norm1"), as in model.safetensors.
// --diagnostics-layers a,b,...: only those norm layers, by path or by index (0-based, in the
// order the norm layers run); a path that is no module of the model is a usage error at
// set-up, an entry that matches no norm layer a warning after the first step (the norm layers
// are known once they have run: the first step is watched for their names only).
// Rank 0 alone observes and writes (its part of the batch). Off (the default), nothing is
// attached and no file is written; the training itself is bit-identical either way.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "apps/run_dir.hpp"
#include "layers/diagnostics.hpp"
#include "layers/models/model.hpp"

namespace nl::app {

class DiagnosticsLog {
 public:
  // every = 0: off. writer = false (ranks 1..): off. layers: --diagnostics-layers (empty: all).
  DiagnosticsLog(int64_t every, bool writer, std::vector<std::string> layers = {});
  bool on() const { return every_ > 0; }
  // Throws UsageError when a --diagnostics-layers entry is neither an index nor a module path of model.
  void check_layers(const Module& model) const;
  // Fresh, or a resumed run's file cut back to its checkpoint's step.
  void open(const std::string& dir, bool resume, int64_t step);
  // Around optimizer step `step` (1-based): observe it if it is logged, then write its rows.
  // after_step returns a warning for the log ("" = none).
  void before_step(Model& model, int64_t step);
  std::string after_step(Model& model, int64_t step);

 private:
  std::string unmatched_layers(const std::vector<std::string>& norm_layers) const;
  int64_t every_;
  std::vector<std::string> layers_;
  bool observing_ = false, probing_ = false, checked_ = false;
  NormDiagnostics diagnostics_, probe_;
  CsvLog csv_;
};

// "a,b,c" -> {"a", "b", "c"} (empty items dropped).
std::vector<std::string> split_layer_list(const std::string& list);

}  // namespace nl::app
