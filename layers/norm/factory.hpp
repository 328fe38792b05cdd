// normlab layers: choose a normalization method by name, so experiments say `--norm gn`.
//
// Most methods insert a layer after a weight layer; some change the weight layer itself
// (wn: weight normalization, ws: weight standardization), and some replace the norm *and*
// the activation (frn: FRN + TLU, evonorm-s0/b0). So models build their blocks through
// three calls, and the factory decides what each means for the chosen method:
//
//   auto conv = make_conv2d(opt, 32, 64, 3, {.pad_h = 1, .pad_w = 1});   // Conv2d / WN / WS conv
//   auto act  = make_norm_act(opt, {64, 14, 14}, NormSite::conv, "relu"); // norm then ReLU, or FRN+TLU
//
// Names: none, bn, syncbn (BatchNorm over the global batch of a data-parallel run), mobn, ln, in, gn, rms, wn, brn, gbn, ws, frn, evonorm-s0, evonorm-b0.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/ops.hpp"
#include "core/random.hpp"
#include "layers/module.hpp"

namespace nl {

struct NormOptions {
  std::string name = "none";
  int64_t groups = 8;          // gn, ws (GroupNorm groups); must divide the channels
  float eps = 1e-5f;
  float momentum = 0.1f;       // running statistics; a negative value means cumulative average
  int64_t stat_batch = 0;      // bn, mobn, brn (and wn's mean-only BN, LSTM bn): training statistics
                               // over groups of this many examples (0 = the whole batch); the
                               // batch-independent norms ignore it
  int64_t ghost_batch = 16;    // gbn: virtual batch size (gbn is bn with stat_batch = ghost_batch)
  float r_max = 3.0f;          // brn: clip of r (final value after warm-up)
  float d_max = 5.0f;          // brn: clip of d (final value after warm-up)
  int64_t renorm_warmup_steps = 0;  // brn: steps to ramp r_max 1->r_max and d_max 0->d_max (0 = none)
  bool wn_mean_only_bn = false;     // wn: add mean-only BatchNorm after each weight-normalized layer
  bool wn_data_init = false;        // wn: the paper's data-dependent initialization
};

// The layout a norm sees: conv feature maps [N, C, H, W], feature vectors [N, D],
// or token sequences [B, T, D] (normalized per token for ln/rms).
enum class NormSite { conv, features, tokens };

// Throws nl::Error for an unknown name (listing the valid ones) or invalid options.
void validate_norm_options(const NormOptions& options);
std::vector<std::string> norm_names();

// Weight layers (plain, weight-normalized or weight-standardized, depending on the method).
std::shared_ptr<Module> make_linear(const NormOptions& options, int64_t in, int64_t out, bool bias = true,
                                    Generator& gen = default_generator());
std::shared_ptr<Module> make_conv2d(const NormOptions& options, int64_t in, int64_t out, int64_t kernel,
                                    Conv2dOptions conv = {}, bool bias = true, Generator& gen = default_generator());

// The norm followed by the activation ("relu", "sigmoid", "tanh", "gelu" or "none"), as one module.
// feature_shape: [C, H, W] for conv, [D] for features and tokens.
std::shared_ptr<Module> make_norm_act(const NormOptions& options, const Shape& feature_shape, NormSite site,
                                      const std::string& activation);

// Just the norm (identity for none / wn without mean-only BN / methods that only change weights).
std::shared_ptr<Module> make_norm(const NormOptions& options, const Shape& feature_shape, NormSite site);

}  // namespace nl
