// normlab norms: the factory (see factory.hpp for the three calls models make).
//
// What each name means at each site (conv: [N, C, H, W]; features: [N, D]; tokens: [B, T, D]):
//   none        identity everywhere
//   bn          BatchNorm2d(C) | BatchNorm1d(D) | tokens: BatchNorm1d(D) on [B*T, D], i.e.
//               statistics per feature over all B*T tokens (reshaped, then reshaped back)
//   mobn        MeanOnlyBatchNorm, same layouts as bn
//   ln          LayerNorm([C, H, W]) | LayerNorm([D]) | LayerNorm([D]) per token
//   rms         RMSNorm over the same dims as ln
//   in          InstanceNorm2d(C, affine=true) -- conv only (features/tokens have no
//               positions to normalize over: nl::Error suggests ln)
//   gn          GroupNorm(groups, C) | GroupNorm(groups, D) on [N, D] | on [B*T, D] per token
//   brn         BatchRenorm, same layouts as bn
//   gbn         Ghost BatchNorm: BatchNorm with stat_batch = ghost_batch, same layouts as bn
// bn, mobn, brn (and wn's mean-only BN) take stat_batch (batch_norm.hpp, "Statistics
// batch"); at the tokens site a group is stat_batch *sequences* (B*T/B tokens each).
//   wn          make_linear/make_conv2d give weight-normalized layers (optionally with the
//               data-dependent init); the norm is identity, or MeanOnlyBatchNorm when
//               wn_mean_only_bn is set
//   ws          make_conv2d gives WSConv2d, the norm is GroupNorm(groups, .) as for gn;
//               make_linear gives a plain Linear (WS is defined for convolutions)
//   frn         FilterResponseNorm+TLU, conv and features ([N, D] as 1x1 maps); not tokens
//   evonorm-s0  EvoNormS0(C, groups), conv and features; not tokens
//   evonorm-b0  EvoNormB0(C), conv and features; not tokens
// frn / evonorm-* include their own nonlinearity: make_norm_act ignores `activation` for them
// (make_norm returns the same module).
#include "layers/norm/factory.hpp"

#include <algorithm>

#include "layers/activation.hpp"
#include "layers/linear.hpp"
#include "layers/norm/batch_norm.hpp"
#include "layers/norm/sync_batch_norm.hpp"
#include "layers/norm/batch_renorm.hpp"
#include "layers/norm/evonorm.hpp"
#include "layers/norm/filter_response_norm.hpp"
#include "layers/norm/group_norm.hpp"
#include "layers/norm/instance_norm.hpp"
#include "layers/norm/layer_norm.hpp"
#include "layers/norm/mean_only_batch_norm.hpp"
#include "layers/norm/rms_norm.hpp"
#include "layers/norm/weight_norm.hpp"
#include "layers/norm/weight_standardization.hpp"

namespace nl {

std::vector<std::string> norm_names() {
  return {"none", "bn", "syncbn", "mobn", "ln", "in", "gn", "rms", "wn", "brn", "gbn", "ws", "frn", "evonorm-s0", "evonorm-b0"};
}

static std::string joined_names() {
  std::string s;
  for (const auto& n : norm_names()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

void validate_norm_options(const NormOptions& o) {
  const auto names = norm_names();
  NL_CHECK(std::find(names.begin(), names.end(), o.name) != names.end(), "unknown norm '", o.name,
           "'; valid names: ", joined_names());
  NL_CHECK(o.eps > 0.0f, "norm '", o.name, "': eps must be positive, got ", o.eps);
  NL_CHECK(o.groups >= 1, "norm '", o.name, "': groups must be >= 1, got ", o.groups);
  NL_CHECK(o.stat_batch == 0 || o.stat_batch >= 2, "norm '", o.name,
           "': stat_batch must be 0 (the whole batch) or >= 2 examples, got ", o.stat_batch);
  NL_CHECK(o.ghost_batch >= 2, "norm 'gbn': ghost_batch must be >= 2, got ", o.ghost_batch);
  NL_CHECK(o.name != "gbn" || o.stat_batch == 0, "norm 'gbn' is BatchNorm with stat_batch = ghost_batch (",
           o.ghost_batch, "); a stat_batch of ", o.stat_batch, " would be a second statistics batch: use bn with ",
           "stat_batch, or gbn with ghost_batch");
  NL_CHECK(o.name != "syncbn" || o.stat_batch == 0, "norm 'syncbn' normalizes over the global batch of all ",
           "ranks; stat_batch must be 0, got ", o.stat_batch, " (per-worker statistics: bn under mpirun)");
  NL_CHECK(o.name != "evonorm-b0" || o.stat_batch == 0, "norm 'evonorm-b0': its batch variance has no ",
           "statistics groups; stat_batch must be 0, got ", o.stat_batch);
  NL_CHECK(o.r_max >= 1.0f && o.d_max >= 0.0f, "norm 'brn': need r_max >= 1 and d_max >= 0, got r_max=", o.r_max,
           " d_max=", o.d_max);
  NL_CHECK(o.renorm_warmup_steps >= 0, "norm 'brn': renorm_warmup_steps must be >= 0");
}

// Applies `inner` to x reshaped [B, T, D] -> [B*T, D] and reshapes the result back: a
// per-feature layer (BatchNorm1d, GroupNorm) sees every token as one sample.
class TokensAsRows : public Module {
 public:
  explicit TokensAsRows(std::shared_ptr<Module> inner) : inner_(register_module("inner", std::move(inner))) {}
  Tensor forward(const Tensor& x) override {
    NL_CHECK(x.dim() == 3, name(), ": expected tokens [B, T, D], got shape ", x.shape());
    return inner_->forward(x.reshape({-1, x.size(2)})).reshape(x.shape());
  }
  std::string name() const override { return "TokensAsRows(" + inner_->name() + ")"; }

 private:
  std::shared_ptr<Module> inner_;
};

// [B, T, D] -> [B, D, T] for a BatchNorm1d with statistics groups: its samples are then
// whole sequences (a group of b sequences holds b*T tokens), its statistics per feature over
// the group's tokens. Without groups TokensAsRows gives the same statistics, faster.
class SequencesAsSamples : public Module {
 public:
  explicit SequencesAsSamples(std::shared_ptr<Module> inner) : inner_(register_module("inner", std::move(inner))) {}
  Tensor forward(const Tensor& x) override {
    NL_CHECK(x.dim() == 3, name(), ": expected tokens [B, T, D], got shape ", x.shape());
    return inner_->forward(x.permute({0, 2, 1})).permute({0, 2, 1});
  }
  std::string name() const override { return "SequencesAsSamples(" + inner_->name() + ")"; }

 private:
  std::shared_ptr<Module> inner_;
};

// Feature vectors [N, D] as [N, D, 1, 1] maps, for layers defined on conv maps.
class FeaturesAsMaps : public Module {
 public:
  explicit FeaturesAsMaps(std::shared_ptr<Module> inner) : inner_(register_module("inner", std::move(inner))) {}
  Tensor forward(const Tensor& x) override {
    NL_CHECK(x.dim() == 2, name(), ": expected features [N, D], got shape ", x.shape());
    return inner_->forward(x.reshape({x.size(0), x.size(1), 1, 1})).reshape(x.shape());
  }
  std::string name() const override { return inner_->name(); }

 private:
  std::shared_ptr<Module> inner_;
};

static int64_t channels_of(const Shape& fs, NormSite site) {
  if (site == NormSite::conv) {
    NL_CHECK(fs.size() == 3, "norm factory: conv site needs feature_shape [C, H, W], got ", fs);
  } else {
    NL_CHECK(fs.size() == 1, "norm factory: ", site == NormSite::features ? "features" : "tokens",
             " site needs feature_shape [D], got ", fs);
  }
  NL_CHECK(fs[0] >= 1, "norm factory: feature_shape ", fs, " needs a positive channel count");
  return fs[0];
}

static const char* site_name(NormSite s) {
  return s == NormSite::conv ? "conv" : s == NormSite::features ? "features" : "tokens";
}

std::shared_ptr<Module> make_norm(const NormOptions& o, const Shape& fs, NormSite site) {
  validate_norm_options(o);
  const int64_t C = channels_of(fs, site);
  const int dims = site == NormSite::conv ? 2 : 1;
  const std::string& n = o.name;
  BatchNormOptions bo;
  bo.eps = o.eps;
  bo.momentum = o.momentum;
  bo.stat_batch = n == "gbn" ? o.ghost_batch : o.stat_batch;
  // Per-feature layers take [B*T, D] rows at the tokens site (BN with groups: [B, D, T]).
  auto per_feature = [&](std::shared_ptr<Module> m) -> std::shared_ptr<Module> {
    if (site != NormSite::tokens) return m;
    if (bo.stat_batch > 0 && dynamic_cast<BatchStatNorm*>(m.get())) return std::make_shared<SequencesAsSamples>(m);
    return std::make_shared<TokensAsRows>(std::move(m));
  };
  auto check_groups = [&] {
    NL_CHECK(C % o.groups == 0, "norm '", n, "': groups=", o.groups, " must divide the channel count ", C,
             " (feature_shape ", fs, ")");
  };

  if (n == "none" || (n == "wn" && !o.wn_mean_only_bn)) return std::make_shared<Identity>();
  if (n == "bn" || n == "gbn") return per_feature(std::make_shared<BatchNorm>(C, dims, bo));
  if (n == "syncbn") return per_feature(std::make_shared<SyncBatchNorm>(C, dims, bo));
  if (n == "mobn" || n == "wn") return per_feature(std::make_shared<MeanOnlyBatchNorm>(C, dims, bo));
  if (n == "brn") {
    BatchRenormOptions ro;
    static_cast<BatchNormOptions&>(ro) = bo;
    ro.r_max = o.r_max;
    ro.d_max = o.d_max;
    ro.warmup_steps = o.renorm_warmup_steps;
    return per_feature(std::make_shared<BatchRenorm>(C, dims, ro));
  }
  if (n == "ln") return std::make_shared<LayerNorm>(fs, o.eps);
  if (n == "rms") return std::make_shared<RMSNorm>(fs, o.eps);
  if (n == "gn" || n == "ws") {
    check_groups();
    return per_feature(std::make_shared<GroupNorm>(o.groups, C, o.eps));
  }
  NL_CHECK(site == NormSite::conv || (site == NormSite::features && n != "in"), "norm '", n,
           "' is not defined at the ", site_name(site), " site (it normalizes over the H, W positions of conv maps",
           n == "in" ? "; use ln or gn for vectors and tokens)" : "; features work as 1x1 maps, tokens do not)");
  auto as_maps = [&](std::shared_ptr<Module> m) -> std::shared_ptr<Module> {
    return site == NormSite::features ? std::make_shared<FeaturesAsMaps>(std::move(m)) : m;
  };
  if (n == "in") return std::make_shared<InstanceNorm2d>(C, o.eps, o.momentum, /*affine=*/true);
  if (n == "frn") return as_maps(std::make_shared<FilterResponseNorm>(C));  // eps 1e-6 as the paper
  if (n == "evonorm-s0") {
    check_groups();
    return as_maps(std::make_shared<EvoNormS0>(C, o.groups, o.eps));
  }
  if (n == "evonorm-b0") return as_maps(std::make_shared<EvoNormB0>(C, o.eps, o.momentum));
  throw Error("make_norm: unhandled norm '" + n + "'");  // unreachable: validated above
}

std::shared_ptr<Module> make_norm_act(const NormOptions& o, const Shape& fs, NormSite site,
                                      const std::string& activation) {
  auto act = make_activation(activation);  // validates the name even when unused
  auto norm = make_norm(o, fs, site);
  if (o.name == "frn" || o.name == "evonorm-s0" || o.name == "evonorm-b0") return norm;
  if (dynamic_cast<Identity*>(act.get())) return norm;
  if (dynamic_cast<Identity*>(norm.get())) return act;
  norm->set_next_activation(activation);  // diagnostics count saturated units before sigmoid / tanh
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{norm, act});
}

std::shared_ptr<Module> make_linear(const NormOptions& o, int64_t in, int64_t out, bool bias, Generator& gen) {
  validate_norm_options(o);
  if (o.name == "wn") return std::make_shared<WeightNormLinear>(in, out, bias, o.wn_data_init, gen);
  return std::make_shared<Linear>(in, out, bias, gen);
}

std::shared_ptr<Module> make_conv2d(const NormOptions& o, int64_t in, int64_t out, int64_t kernel,
                                    Conv2dOptions conv, bool bias, Generator& gen) {
  validate_norm_options(o);
  if (o.name == "wn") return std::make_shared<WeightNormConv2d>(in, out, kernel, conv, bias, o.wn_data_init, gen);
  if (o.name == "ws") return std::make_shared<WSConv2d>(in, out, kernel, conv, bias, 1e-5f, gen);
  return std::make_shared<Conv2d>(in, out, kernel, conv, bias, gen);
}

}  // namespace nl
