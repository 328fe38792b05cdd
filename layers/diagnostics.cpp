// normlab layers: diagnostics. See diagnostics.hpp.
#include "layers/diagnostics.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "layers/norm/batch_norm.hpp"
#include "layers/norm/batch_renorm.hpp"

namespace nl {

static void attach_recursive(Module& m, NormObserver* observer, const std::string& name) {
  m.set_norm_observer(observer, name);
  for (auto& [child_name, child] : m.named_children())
    attach_recursive(*child, observer, name.empty() ? child_name : name + "." + child_name);
}

void attach_norm_observer(Module& root, NormObserver* observer, const std::string& root_name) {
  root.set_norm_observer(observer, root_name);
  for (auto& [child_name, child] : root.named_children()) attach_recursive(*child, observer, child_name);
}

std::vector<double> percentiles(std::vector<float> values, const std::vector<double>& ps) {
  NL_CHECK(!values.empty(), "percentiles: no values");
  // Order statistics by selection, not a full sort: for ascending p each nth_element works on
  // what is right of the previous one (linear time per percentile; a sort of 4096 floats per
  // layer and step was most of the diagnostics' cost on small models).
  std::vector<size_t> order(ps.size());
  for (size_t i = 0; i < ps.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ps[a] < ps[b]; });
  std::vector<double> out(ps.size());
  size_t start = 0;
  for (size_t i : order) {
    const double p = ps[i];
    NL_CHECK(p >= 0.0 && p <= 100.0, "percentiles: p must be in [0, 100], got ", p);
    const double rank = p / 100.0 * static_cast<double>(values.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(rank));
    std::nth_element(values.begin() + start, values.begin() + lo, values.end());
    start = lo;
    const double w = rank - static_cast<double>(lo);
    // the next order statistic: the smallest value right of lo (only needed between two)
    const float hi = w > 0.0 ? *std::min_element(values.begin() + lo + 1, values.end()) : values[lo];
    out[i] = (1.0 - w) * values[lo] + w * hi;
  }
  return out;
}

// SplitMix64: a tiny, well-mixed stateless generator, so sampling never touches the training RNG.
static uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::vector<float> sample_elements(const Tensor& x, int64_t max_count, uint64_t seed) {
  const Tensor c = x.contiguous();
  const float* d = c.data();
  const int64_t n = c.numel();
  if (n <= max_count) return std::vector<float>(d, d + n);
  std::vector<float> out(static_cast<size_t>(max_count));
  for (int64_t i = 0; i < max_count; ++i)
    out[static_cast<size_t>(i)] = d[splitmix64(seed + static_cast<uint64_t>(i)) % static_cast<uint64_t>(n)];
  return out;
}

// Sums of float runs: float partial sums over blocks of 256 (vectorized), added in double.
// `f` maps an element to what is summed.
template <typename F>
static double block_sum(const float* p, int64_t n, F f) {
  double total = 0.0;
  for (int64_t b = 0; b < n; b += 256) {
    const int64_t e = std::min<int64_t>(n, b + 256);
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = b; i < e; ++i) s += f(p[i]);
    total += s;
  }
  return total;
}

BatchStatsNoise batch_stats_noise(const BatchStatNorm& norm, const Tensor& x) {
  const int64_t C = norm.num_features();
  NL_CHECK(x.dim() >= 2 && x.size(1) == C, "batch_stats_noise: expected input [N, ", C, ", ...], got ", x.shape());
  const Tensor c = x.contiguous();
  const int64_t N = c.size(0), S = c.numel() / (N * C);
  const int64_t n1 = norm.stat_groups(N)[1];  // the first group: samples [0, n1)
  const float* run_mean = norm.running_mean.data();
  const float* run_var = norm.running_var.data();
  BatchStatsNoise out{0.0, 0.0, 0};
  for (int64_t ch = 0; ch < C; ++ch) {
    if (!(run_var[ch] > 0.0f)) continue;
    double sum = 0.0, sum_sq = 0.0;  // two passes: the mean, then squared deviations from it
    for (int64_t n = 0; n < n1; ++n) sum += block_sum(c.data() + (n * C + ch) * S, S, [](float v) { return v; });
    const double M = static_cast<double>(n1 * S), mean = sum / M;
    const float mf = static_cast<float>(mean);
    for (int64_t n = 0; n < n1; ++n)
      sum_sq += block_sum(c.data() + (n * C + ch) * S, S, [mf](float v) { return (v - mf) * (v - mf); });
    const double var_biased = sum_sq / M;
    out.mean_shift += std::abs(mean - run_mean[ch]) / std::sqrt(static_cast<double>(run_var[ch]));
    out.var_ratio += var_biased / run_var[ch];
    ++out.channels;
  }
  if (out.channels > 0) {
    out.mean_shift /= static_cast<double>(out.channels);
    out.var_ratio /= static_cast<double>(out.channels);
  }
  return out;
}

const std::vector<double>& NormDiagnostics::reported_percentiles() {
  static const std::vector<double> ps{1, 15, 50, 85, 99};
  return ps;
}

void NormDiagnostics::add_percentiles(const std::string& layer, const std::string& what,
                                      const std::vector<float>& sample) {
  const auto& ps = reported_percentiles();
  const std::vector<double> values = percentiles(sample, ps);
  for (size_t i = 0; i < ps.size(); ++i)
    rows_.push_back({layer, what + "_p" + std::to_string(static_cast<int>(ps[i])), values[i]});
}

void NormDiagnostics::select_layers(std::vector<std::string> names_or_indices) {
  select_ = std::set<std::string>(names_or_indices.begin(), names_or_indices.end());
}

bool NormDiagnostics::selected(const std::string& layer, size_t index) const {
  if (select_none_) return false;
  return select_.empty() || select_.count(layer) > 0 || select_.count(std::to_string(index)) > 0;
}

void NormDiagnostics::norm_input(const std::string& layer, const Module& norm, const Tensor& x) {
  if (!inputs_seen_.insert(layer).second) return;
  order_.push_back(layer);
  if (!selected(layer, order_.size() - 1)) return;
  observed_.insert(layer);
  layers_.emplace_back(layer, &norm);
  add_percentiles(layer, "input", sample_elements(x, kMaxSamples, kSampleSeed));
  const auto* bn = dynamic_cast<const BatchStatNorm*>(&norm);
  if (bn && norm.is_training() && bn->tracks_running_stats() && bn->has_running_var() && bn->num_stat_slots() == 1) {
    const BatchStatsNoise noise = batch_stats_noise(*bn, x);
    if (noise.channels > 0) {
      rows_.push_back({layer, "bn_mean_shift", noise.mean_shift});
      rows_.push_back({layer, "bn_var_ratio", noise.var_ratio});
    }
  }
}

void NormDiagnostics::norm_output(const std::string& layer, const Module& norm, const Tensor& y) {
  if (!observed_.count(layer) || !outputs_seen_.insert(layer).second) return;
  const std::vector<float> sample = sample_elements(y, kMaxSamples, kSampleSeed);
  add_percentiles(layer, "output", sample);
  if (const auto* brn = dynamic_cast<const BatchRenorm*>(&norm); brn && norm.is_training()) {
    const RenormClipStats& c = brn->last_clip_stats();
    if (c.pairs > 0) {
      const double pairs = static_cast<double>(c.pairs);
      rows_.push_back({layer, "brn_clip_fraction", static_cast<double>(c.either) / pairs});
      rows_.push_back({layer, "brn_r_clip_fraction", static_cast<double>(c.r) / pairs});
      rows_.push_back({layer, "brn_d_clip_fraction", static_cast<double>(c.d) / pairs});
    }
  }
  if (norm.next_activation() == "sigmoid" || norm.next_activation() == "tanh") {
    const auto saturated = std::count_if(sample.begin(), sample.end(), [](float v) { return std::abs(v) > 3.0f; });
    rows_.push_back({layer, "saturated_fraction", static_cast<double>(saturated) / static_cast<double>(sample.size())});
  }
}

// One tap per layer and step: the first call's (as the other quantities).
bool NormDiagnostics::wants_input_gradient(const std::string& layer) {
  return observed_.count(layer) && input_tapped_.insert(layer).second;
}
bool NormDiagnostics::wants_output_gradient(const std::string& layer) {
  return observed_.count(layer) && output_tapped_.insert(layer).second;
}

static double sum_of_squares(const Tensor& g) {
  const Tensor c = g.contiguous();
  return block_sum(c.data(), c.numel(), [](float v) { return v * v; });
}
void NormDiagnostics::norm_input_gradient(const std::string& layer, const Tensor& g) {
  grad_input_sq_[layer] += sum_of_squares(g);
}
void NormDiagnostics::norm_output_gradient(const std::string& layer, const Tensor& g) {
  grad_output_sq_[layer] += sum_of_squares(g);
}

void NormDiagnostics::record_gradients() {
  for (const auto& [layer, norm] : layers_) {
    for (const auto& [name, p] : norm->named_parameters()) {
      if (name != "weight") continue;
      const Tensor g = p.grad();
      if (!g.defined()) continue;
      rows_.push_back({layer, "grad_norm_weight", std::sqrt(sum_of_squares(g))});
    }
    if (auto it = grad_output_sq_.find(layer); it != grad_output_sq_.end())
      rows_.push_back({layer, "grad_norm_output", std::sqrt(it->second)});
    if (auto it = grad_input_sq_.find(layer); it != grad_input_sq_.end())
      rows_.push_back({layer, "grad_norm_input", std::sqrt(it->second)});
  }
}

std::vector<DiagnosticRow> NormDiagnostics::take_rows() {
  layers_.clear();
  order_.clear();
  inputs_seen_.clear();
  outputs_seen_.clear();
  observed_.clear();
  input_tapped_.clear();
  output_tapped_.clear();
  grad_input_sq_.clear();
  grad_output_sq_.clear();
  return std::exchange(rows_, {});
}

}  // namespace nl
