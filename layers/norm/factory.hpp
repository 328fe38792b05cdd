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
// The names and what each one is are one table, norm_registry() (factory.cpp): make_norm,
// the command line's --norm help and check, the sweep's eval modes, the README's norm table
// (checked by a test) and the tests' loops over every method all read it.
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
  int64_t pn_warmup_steps = 10000;  // pn: steps normalized by the batch's quadratic mean before running_phi
                                    // (the official default); its running average uses momentum
  std::string pn_backward = "approximate";  // pn: approximate (the official backward) | exact
  int64_t pn_groups = 1;            // pn: GroupScaling1D groups (1: the whole token); must divide the channels
  float pn_alpha_bkw = 0.9f;        // pn: the backward's running statistic (official default)
};

// The layout a norm sees: conv feature maps [N, C, H, W], feature vectors [N, D],
// or token sequences [B, T, D] (normalized per token for ln/rms).
enum class NormSite { conv, features, tokens };

// One registry line per method.
struct NormInfo {
  // How the layer reads its input: per channel (tokens become rows [B*T, D]), the whole
  // feature_shape (ln, rms), or conv maps only (features become [N, D, 1, 1] maps).
  enum class Reads { channel, shape, maps };
  // What --stat-batch does: groups the batch statistics, is ignored (no batch statistics), or
  // is refused (gbn has its own --ghost-batch; syncbn's statistics are the global batch's;
  // evonorm-b0's batch variance has no groups).
  enum class StatBatch { grouped, ignored, refused };
  const char* name;    // --norm NAME
  const char* method;  // for help and the README
  const char* paper;   // citation ("" for none)
  const char* file;    // its header in layers/norm/ ("" for none)
  const char* flags;   // options it reads besides --eps / --momentum
  bool conv, features, tokens;  // the sites where it is defined
  Reads reads;
  StatBatch stat_batch;
  const char* stat_batch_note;  // StatBatch::refused: why, for the error ("" otherwise)
  bool batch_stat_norm;      // a BatchStatNorm: eval's batch-statistics and Precise-BN modes apply
  bool includes_activation;  // norm and nonlinearity in one: make_norm_act ignores `activation`
  // The layer for C channels (dims 2: conv maps, 1: vectors); feature_shape for Reads::shape.
  std::shared_ptr<Module> (*make)(const NormOptions& options, int64_t C, int dims, const Shape& feature_shape);
};
const std::vector<NormInfo>& norm_registry();
const NormInfo& norm_info(const std::string& name);  // nl::Error for an unknown name, listing the valid ones
std::vector<std::string> norm_names();               // the registry's names, in order

// Throws nl::Error for an unknown name (listing the valid ones) or invalid options.
void validate_norm_options(const NormOptions& options);

// Weight layers (plain, weight-normalized or weight-standardized, depending on the method).
std::shared_ptr<Module> make_linear(const NormOptions& options, int64_t in, int64_t out, bool bias = true,
                                    Generator& gen = default_generator());
std::shared_ptr<Module> make_conv2d(const NormOptions& options, int64_t in, int64_t out, int64_t kernel,
                                    Conv2dOptions conv = {}, bool bias = true, Generator& gen = default_generator());

// The norm followed by the activation ("relu", "sigmoid", "tanh", "gelu" or "none"), as one module.
// feature_shape: [C, H, W] for conv, [D] for features and tokens. BatchNorm, GroupNorm,
// InstanceNorm2d or LayerNorm then ReLU runs as one pass (their forward_relu); the children are named "0" and "1" either way, like a
// Sequential's, so checkpoints do not depend on it.
std::shared_ptr<Module> make_norm_act(const NormOptions& options, const Shape& feature_shape, NormSite site,
                                      const std::string& activation);

// Just the norm (identity for none / wn without mean-only BN / methods that only change weights).
std::shared_ptr<Module> make_norm(const NormOptions& options, const Shape& feature_shape, NormSite site);

}  // namespace nl
