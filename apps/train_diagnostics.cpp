// normlab apps: `train --diagnostics`. See train_diagnostics.hpp.
#include "apps/train_diagnostics.hpp"

#include <algorithm>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "apps/train_config.hpp"

namespace nl::app {

namespace {
const std::vector<std::string> kDiagnosticColumns{"step", "layer", "quantity", "value"};

bool is_index(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

void module_paths(const Module& m, const std::string& prefix, std::set<std::string>& out) {
  for (const auto& [name, child] : m.named_children()) {
    const std::string path = prefix.empty() ? name : prefix + "." + name;
    out.insert(path);
    module_paths(*child, path, out);
  }
}
}  // namespace

std::vector<std::string> split_layer_list(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

DiagnosticsLog::DiagnosticsLog(int64_t every, bool writer, std::vector<std::string> layers)
    : every_(writer ? every : 0), layers_(std::move(layers)), checked_(layers_.empty()) {
  diagnostics_.select_layers(layers_);
  probe_.select_none();
}

void DiagnosticsLog::check_layers(const Module& model) const {
  std::set<std::string> paths;
  module_paths(model, "", paths);
  for (const std::string& l : layers_)
    if (!is_index(l) && !paths.count(l))
      throw UsageError(fmt::format("--diagnostics-layers: '{}' is not a layer of the model (give module paths as in "
                                   "model.safetensors, e.g. '{}', or indices 0, 1, ... of the norm layers)",
                                   l, paths.empty() ? "0" : *paths.begin()));
}

void DiagnosticsLog::open(const std::string& dir, bool resume, int64_t step) {
  if (!on()) return;
  if (resume)
    csv_.open_resume(dir + "/diagnostics.csv", kDiagnosticColumns, step, 0);
  else
    csv_.open_fresh(dir + "/diagnostics.csv", kDiagnosticColumns);
}

void DiagnosticsLog::before_step(Model& model, int64_t step) {
  if (!on()) return;
  if (step % every_ == 0) {
    attach_norm_observer(model, &diagnostics_);
    observing_ = true;
  } else if (!checked_) {  // only the names of the norm layers, to check --diagnostics-layers
    attach_norm_observer(model, &probe_);
    probing_ = true;
  }
}

std::string DiagnosticsLog::unmatched_layers(const std::vector<std::string>& norm_layers) const {
  std::vector<std::string> unmatched;
  for (const std::string& l : layers_) {
    const bool match = is_index(l) ? std::stoull(l) < norm_layers.size()
                                   : std::find(norm_layers.begin(), norm_layers.end(), l) != norm_layers.end();
    if (!match) unmatched.push_back(l);
  }
  if (unmatched.empty()) return "";
  std::vector<std::string> listed;
  for (size_t i = 0; i < norm_layers.size(); ++i) listed.push_back(fmt::format("{} = {}", i, norm_layers[i]));
  return fmt::format("warning: --diagnostics-layers {} matched no norm layer (the norm layers: {})",
                     fmt::join(unmatched, ","), listed.empty() ? "none" : fmt::format("{}", fmt::join(listed, ", ")));
}

std::string DiagnosticsLog::after_step(Model& model, int64_t step) {
  std::string warning;
  if (probing_) {
    attach_norm_observer(model, nullptr);
    probing_ = false;
    checked_ = true;
    warning = unmatched_layers(probe_.layer_names());
    probe_.take_rows();
  }
  if (!observing_) return warning;
  attach_norm_observer(model, nullptr);
  observing_ = false;
  if (!checked_) {
    checked_ = true;
    warning = unmatched_layers(diagnostics_.layer_names());
  }
  diagnostics_.record_gradients();
  for (const DiagnosticRow& r : diagnostics_.take_rows())
    csv_.row({std::to_string(step), r.layer, r.quantity, fmt::format("{:.7g}", r.value)});
  return warning;
}

}  // namespace nl::app
