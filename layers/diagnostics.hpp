// normlab layers: diagnostics, a look inside the norm layers while a model trains.
//
// A NormObserver attached to a model (attach_norm_observer) is called by every norm layer
// twice per forward: with its input, before the layer changes any buffer, and with its output.
// Nothing else changes: with no observer attached a norm layer tests one pointer and goes on,
// and an observer reads tensors, it never writes them (training is bit-identical either way).
//
// NormDiagnostics is the observer `normlab train --diagnostics` uses. For the first call of
// each norm layer while attached it computes, as (layer, quantity, value) rows:
//   input_p1 .. input_p99, output_p1 .. output_p99   percentiles 1/15/50/85/99 of the layer's
//       input and output (BN paper Fig. 1b,c; GN paper Fig. 4), over at most kMaxSamples
//       elements drawn with a fixed seed, so the cost per layer is bounded;
//   bn_mean_shift = mean_c |mu_B - mu_running| / sigma_running   (BatchStatNorm layers with a
//   bn_var_ratio  = mean_c sigma_B^2 / sigma_running^2            running variance, training)
//       how far the batch statistics the layer normalizes with are from the running ones it
//       will use at inference: mu_B and the biased sigma_B^2 of the first statistics group
//       (with --stat-batch b, the first b examples), running statistics before this batch's
//       update; channels whose running variance is 0 are left out;
//   saturated_fraction   the fraction of outputs with |y| > 3 when a sigmoid or tanh follows
//       (Module::next_activation, set by the factory's make_norm_act);
//   grad_norm_weight     after backward (record_gradients): the L2 norm of the layer's weight
//       gradient. The gradient of the layer's *input* is not recorded: the tape frees
//       intermediate gradients and has no hook for them.
#pragma once

#include <cstdint>
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

  void norm_input(const std::string& layer, const Module& norm, const Tensor& x) override;
  void norm_output(const std::string& layer, const Module& norm, const Tensor& y) override;
  // After backward: grad_norm_weight of every norm layer observed since the last take_rows.
  void record_gradients();
  // The rows since the last call, in the order the layers ran; forgets the layers seen.
  std::vector<DiagnosticRow> take_rows();

 private:
  void add_percentiles(const std::string& layer, const std::string& what, const std::vector<float>& sample);
  std::vector<DiagnosticRow> rows_;
  std::vector<std::pair<std::string, const Module*>> layers_;  // observed, in order
  std::set<std::string> inputs_seen_, outputs_seen_;  // a layer run twice in a step reports once
};

}  // namespace nl
