// normlab apps: `train --diagnostics`, what each norm layer does while the model trains.
//
//   DIR/diagnostics.csv    step,layer,quantity,value   (long format: one row per quantity)
//
// Every --diagnostics-every steps (default: --log-every) the step's training forward is
// observed (layers/diagnostics.hpp says what each quantity is and how it is sampled), the
// weight-gradient norms are read after its backward (after the data-parallel average and
// any clipping), and the rows are appended under the step's number (1-based, as metrics.csv).
// layer is the norm's dotted module path ("3", "stage1.0.norm1"), as in model.safetensors.
// Rank 0 alone observes and writes (its part of the batch). Off (the default), nothing is
// attached and no file is written; the training itself is bit-identical either way.
#pragma once

#include <cstdint>
#include <string>

#include "apps/run_dir.hpp"
#include "layers/diagnostics.hpp"
#include "layers/models/model.hpp"

namespace nl::app {

class DiagnosticsLog {
 public:
  // every = 0: off. writer = false (ranks 1..): off.
  DiagnosticsLog(int64_t every, bool writer) : every_(writer ? every : 0) {}
  bool on() const { return every_ > 0; }
  // Fresh, or a resumed run's file cut back to its checkpoint's step.
  void open(const std::string& dir, bool resume, int64_t step);
  // Around optimizer step `step` (1-based): observe it if it is logged, then write its rows.
  void before_step(Model& model, int64_t step);
  void after_step(Model& model, int64_t step);

 private:
  int64_t every_;
  bool observing_ = false;
  NormDiagnostics diagnostics_;
  CsvLog csv_;
};

}  // namespace nl::app
