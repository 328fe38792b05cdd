// normlab layers: diagnostics, a look inside the norm layers while a model trains.
//
// A NormObserver attached to a model (attach_norm_observer) is called by every norm layer
// twice per forward: with its input, before the layer changes any buffer, and with its output.
// Nothing else changes: with no observer attached a norm layer tests one pointer and goes on,
// and an observer reads tensors, it never writes them (training is bit-identical either way).
//
// NormDiagnostics is the observer `normlab train --diagnostics` uses. For the first call of
// each selected norm layer while attached it computes, as (layer, quantity, value) rows:
//   input_p1 .. input_p99, output_p1 .. output_p99   percentiles 1/15/50/85/99 of the layer's
//       input and output (BN paper Fig. 1b,c; GN paper Fig. 4), over at most kMaxSamples
//       elements drawn with a fixed seed, so the cost per layer is bounded;
//   bn_mean_shift = mean_c |mu_B - mu_running| / sigma_running   (BatchStatNorm layers with a
//   bn_var_ratio  = mean_c sigma_B^2 / sigma_running^2            running variance, training)
//       how far the batch statistics the layer normalizes with are from the running ones it
//       will use at inference: mu_B and the biased sigma_B^2 of the first statistics group
//       (with --stat-batch b, the first b examples), running statistics before this batch's
//       update; channels whose running variance is 0 are left out;
//   brn_clip_fraction, brn_r_clip_fraction, brn_d_clip_fraction   (BatchRenorm, training) the
//       fraction of its (statistics group, channel) pairs whose r or d, r, d was clipped in
//       this forward (BatchRenorm::last_clip_stats);
//   saturated_fraction   the fraction of outputs with |y| > 3 when a sigmoid or tanh follows
//       (Module::next_activation, set by the factory's make_norm_act);
// and after backward (record_gradients), the L2 norms of
//   grad_norm_weight     the layer's weight (gamma) gradient;
//   grad_norm_output     the gradient reaching the layer's output, dL/dy (every use of y);
//   grad_norm_input      the gradient the layer passes back to its input, (dy/dx)^T dL/dy:
//       the layer's own contribution, not other uses of x (a Pre-LN block's residual path);
//       Xiong et al. 2020, Fig. 3 compare these per layer for Pre-LN and Post-LN at init.
//       They come from grad_taps (core/autograd.hpp) on the layer's input and output: an
//       identity in the graph, gradients handed on unchanged. A tensor with several uses sums
//       their gradients in the order the tape runs them, which the taps can change only where
//       a norm's input has three or more uses (none of normlab's models); the sums of squares
//       are one pass over each gradient, in double.
// Layer selection (select_layers): all norm layers, or those named by their path or by their
// index, 0-based in the order the layers first run in a step (layer_names() lists them).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "layers/module.hpp"

namespace nl {

class BatchStatNorm;

class NormObserver {
 public:
  virtual ~NormObserver() = default;
  virtual void norm_input(const std::string& layer, const Module& norm, const Tensor& x) = 0;
  virtual void norm_output(const std::string& layer, const Module& norm, const Tensor& y) = 0;
  // Asked right after norm_input / norm_output: true puts a grad_tap there, and backward then
  // calls norm_input_gradient / norm_output_gradient with the gradient the layer passes to its
  // input / the one reaching its output. Default: no taps, nothing in the graph changes.
  virtual bool wants_input_gradient(const std::string& layer) { return false; }
  virtual bool wants_output_gradient(const std::string& layer) { return false; }
  virtual void norm_input_gradient(const std::string& layer, const Tensor& g) {}
  virtual void norm_output_gradient(const std::string& layer, const Tensor& g) {}
};

// Attaches `observer` (nullptr: detaches) to root and every module under it, each named by
// its dotted path as in named_parameters ("3", "stage1.0.norm1"; root_name for the root).
void attach_norm_observer(Module& root, NormObserver* observer, const std::string& root_name = "model");

// The p-th percentiles (p in [0, 100]) of values, interpolated linearly between order
// statistics as numpy.percentile does by default: rank p/100 * (n - 1).
std::vector<double> percentiles(std::vector<float> values, const std::vector<double>& ps);

// Every element of x when it has at most max_count, else max_count elements at positions
// drawn uniformly (with replacement) from a generator seeded with `seed`: the same positions
// for the same shape at every call.
std::vector<float> sample_elements(const Tensor& x, int64_t max_count, uint64_t seed);

struct BatchStatsNoise {
  double mean_shift = 0.0;  // mean_c |mu_B - mu_running| / sigma_running
  double var_ratio = 1.0;   // mean_c sigma_B^2 / sigma_running^2
  int64_t channels = 0;     // channels counted (running variance > 0)
};
// The first statistics group of x ([N, C, ...]) against norm's running statistics (slot 0).
BatchStatsNoise batch_stats_noise(const BatchStatNorm& norm, const Tensor& x);

struct DiagnosticRow {
  std::string layer, quantity;
  double value;
};

class NormDiagnostics : public NormObserver {
 public:
  static constexpr int64_t kMaxSamples = 4096;
  static constexpr uint64_t kSampleSeed = 0x5eed;
  static const std::vector<double>& reported_percentiles();  // 1, 15, 50, 85, 99

  // Layer paths ("stage1.0.norm1") or indices ("3"); empty: every norm layer (the default).
  // select_none: observe no layer at all, only list them (layer_names).
  void select_layers(std::vector<std::string> names_or_indices);
  void select_none() { select_none_ = true; }
  // Every norm layer that ran since the last take_rows, selected or not, in the order they ran.
  const std::vector<std::string>& layer_names() const { return order_; }

  void norm_input(const std::string& layer, const Module& norm, const Tensor& x) override;
  void norm_output(const std::string& layer, const Module& norm, const Tensor& y) override;
  bool wants_input_gradient(const std::string& layer) override;
  bool wants_output_gradient(const std::string& layer) override;
  void norm_input_gradient(const std::string& layer, const Tensor& g) override;
  void norm_output_gradient(const std::string& layer, const Tensor& g) override;
  // After backward: the gradient rows of every layer observed since the last take_rows.
  void record_gradients();
  // The rows since the last call, in the order the layers ran; forgets the layers seen.
  std::vector<DiagnosticRow> take_rows();

 private:
  bool selected(const std::string& layer, size_t index) const;
  void add_percentiles(const std::string& layer, const std::string& what, const std::vector<float>& sample);
  std::vector<DiagnosticRow> rows_;
  std::vector<std::pair<std::string, const Module*>> layers_;  // observed, in order
  std::vector<std::string> order_;                             // every norm layer that ran
  std::set<std::string> inputs_seen_, outputs_seen_;  // a layer run twice in a step reports once
  std::set<std::string> observed_, input_tapped_, output_tapped_;
  std::map<std::string, double> grad_input_sq_, grad_output_sq_;  // sums of squares from the taps
  std::set<std::string> select_;
  bool select_none_ = false;
};

}  // namespace nl
