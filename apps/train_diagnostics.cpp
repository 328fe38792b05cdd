// normlab apps: `train --diagnostics`. See train_diagnostics.hpp.
#include "apps/train_diagnostics.hpp"

#include <fmt/format.h>

namespace nl::app {

namespace {
const std::vector<std::string> kDiagnosticColumns{"step", "layer", "quantity", "value"};
}

void DiagnosticsLog::open(const std::string& dir, bool resume, int64_t step) {
  if (!on()) return;
  if (resume)
    csv_.open_resume(dir + "/diagnostics.csv", kDiagnosticColumns, step, 0);
  else
    csv_.open_fresh(dir + "/diagnostics.csv", kDiagnosticColumns);
}

void DiagnosticsLog::before_step(Model& model, int64_t step) {
  if (!on() || step % every_ != 0) return;
  attach_norm_observer(model, &diagnostics_);
  observing_ = true;
}

void DiagnosticsLog::after_step(Model& model, int64_t step) {
  if (!observing_) return;
  attach_norm_observer(model, nullptr);
  observing_ = false;
  diagnostics_.record_gradients();
  for (const DiagnosticRow& r : diagnostics_.take_rows())
    csv_.row({std::to_string(step), r.layer, r.quantity, fmt::format("{:.7g}", r.value)});
}

}  // namespace nl::app
