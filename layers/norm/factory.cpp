// normlab norms: the factory (see factory.hpp for the three calls models make).
//
// What each name means at each site (conv: [N, C, H, W]; features: [N, D]; tokens: [B, T, D]):
//   none        identity everywhere
//   bn          BatchNorm2d(C) | BatchNorm1d(D) | tokens: BatchNorm1d(D) on [B*T, D], i.e.
//               statistics per feature over all B*T tokens (reshaped, then reshaped back)
//   syncbn      SyncBatchNorm: BatchNorm whose statistics span all ranks, same layouts as bn
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
//   pn          PowerNorm(D) on [N, D] | on [B, T, D] (statistics per feature over all B*T tokens); not conv
// frn / evonorm-* include their own nonlinearity: make_norm_act ignores `activation` for them
// (make_norm returns the same module).
#include "layers/norm/factory.hpp"

#include <algorithm>
#include <typeinfo>

#include "layers/activation.hpp"
#include "layers/norm/no_norm.hpp"
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
#include "layers/norm/power_norm.hpp"
#include "layers/norm/rms_norm.hpp"
#include "layers/norm/weight_norm.hpp"
#include "layers/norm/weight_standardization.hpp"

namespace nl {

// ---------------------------------------------------------------- the registry
// One line per method; a maker builds the layer for C channels (dims 2: conv maps, 1: vectors)
// and make_norm wraps it for the site (Reads::channel: tokens as rows; Reads::maps: features
// as 1x1 maps; Reads::shape: the layer takes feature_shape itself).

static BatchNormOptions bn_options(const NormOptions& o, int64_t stat_batch) {
  return {.eps = o.eps, .momentum = o.momentum, .stat_batch = stat_batch};
}
static void check_groups(const NormOptions& o, int64_t C) {
  NL_CHECK(C % o.groups == 0, "norm '", o.name, "': groups=", o.groups, " must divide the channel count ", C);
}
using ModulePtr = std::shared_ptr<Module>;

const std::vector<NormInfo>& norm_registry() {
  using R = NormInfo::Reads;
  using SB = NormInfo::StatBatch;
  static const std::vector<NormInfo> table = {
      // name, method, paper, file, flags, conv/features/tokens, reads, stat batch (why refused), BN family,
      // activation, maker
      {"none", "no normalization", "", "", "", true, true, true, R::shape, SB::ignored, "", false, false,
       [](const NormOptions&, int64_t, int, const Shape&) -> ModulePtr { return std::make_shared<NoNorm>(); }},
      {"bn", "BatchNorm1d/2d", "Ioffe & Szegedy 2015", "batch_norm.hpp", "--stat-batch", true, true, true,
       R::channel, SB::grouped, "", true, false,
       [](const NormOptions& o, int64_t C, int dims, const Shape&) -> ModulePtr {
         return std::make_shared<BatchNorm>(C, dims, bn_options(o, o.stat_batch));
       }},
      {"syncbn", "SyncBatchNorm: BatchNorm over the global batch of all ranks, as PyTorch's; --sync-bn turns bn "
       "into it", "", "sync_batch_norm.hpp", "", true, true, true, R::channel, SB::refused,
       "normalizes over the global batch of all ranks (per-worker statistics: bn under mpirun)", true, false,
       [](const NormOptions& o, int64_t C, int dims, const Shape&) -> ModulePtr {
         return std::make_shared<SyncBatchNorm>(C, dims, bn_options(o, 0));
       }},
      {"mobn", "mean-only BatchNorm", "Salimans & Kingma 2016", "mean_only_batch_norm.hpp", "--stat-batch", true, true,
       true, R::channel, SB::grouped, "", true, false,
       [](const NormOptions& o, int64_t C, int dims, const Shape&) -> ModulePtr {
         return std::make_shared<MeanOnlyBatchNorm>(C, dims, bn_options(o, o.stat_batch));
       }},
      {"ln", "LayerNorm", "Ba et al. 2016", "layer_norm.hpp", "", true, true, true, R::shape, SB::ignored, "", false, false,
       [](const NormOptions& o, int64_t, int, const Shape& fs) -> ModulePtr { return std::make_shared<LayerNorm>(fs, o.eps); }},
      {"in", "InstanceNorm1d/2d", "Ulyanov et al. 2016", "instance_norm.hpp", "", true, false, false, R::maps,
       SB::ignored, "", false, false,
       [](const NormOptions& o, int64_t C, int, const Shape&) -> ModulePtr {
         return std::make_shared<InstanceNorm2d>(C, o.eps, o.momentum, /*affine=*/true);
       }},
      {"gn", "GroupNorm", "Wu & He 2018", "group_norm.hpp", "--groups", true, true, true, R::channel, SB::ignored, "",
       false, false,
       [](const NormOptions& o, int64_t C, int, const Shape&) -> ModulePtr {
         check_groups(o, C);
         return std::make_shared<GroupNorm>(o.groups, C, o.eps);
       }},
      {"rms", "RMSNorm", "Zhang & Sennrich 2019", "rms_norm.hpp", "", true, true, true, R::shape, SB::ignored, "", false,
       false, [](const NormOptions& o, int64_t, int, const Shape& fs) -> ModulePtr { return std::make_shared<RMSNorm>(fs, o.eps); }},
      {"wn", "WeightNorm on Linear/Conv2d", "Salimans & Kingma 2016", "weight_norm.hpp",
       "--wn-mean-only-bn, --wn-data-init, --stat-batch", true, true, true, R::channel, SB::grouped, "", false, false,
       [](const NormOptions& o, int64_t C, int dims, const Shape&) -> ModulePtr {
         if (!o.wn_mean_only_bn) return std::make_shared<NoNorm>();
         return std::make_shared<MeanOnlyBatchNorm>(C, dims, bn_options(o, o.stat_batch));
       }},
      {"brn", "Batch Renormalization", "Ioffe 2017", "batch_renorm.hpp", "--r-max, --d-max, --renorm-warmup, --stat-batch",
       true, true, true, R::channel, SB::grouped, "", true, false,
       [](const NormOptions& o, int64_t C, int dims, const Shape&) -> ModulePtr {
         BatchRenormOptions ro;
         static_cast<BatchNormOptions&>(ro) = bn_options(o, o.stat_batch);
         ro.r_max = o.r_max;
         ro.d_max = o.d_max;
         ro.warmup_steps = o.renorm_warmup_steps;
         return std::make_shared<BatchRenorm>(C, dims, ro);
       }},
      {"gbn", "Ghost BatchNorm: BatchNorm with --stat-batch = the ghost batch", "Hoffer et al. 2017",
       "batch_norm.hpp", "--ghost-batch", true, true, true, R::channel, SB::refused,
       "is BatchNorm with stat_batch = ghost_batch; use bn with stat_batch, or gbn with ghost_batch", true, false,
       [](const NormOptions& o, int64_t C, int dims, const Shape&) -> ModulePtr {
         return std::make_shared<BatchNorm>(C, dims, bn_options(o, o.ghost_batch));
       }},
      {"ws", "Weight Standardization + GroupNorm", "Qiao et al. 2019", "weight_standardization.hpp", "--groups", true,
       true, true, R::channel, SB::ignored, "", false, false,
       [](const NormOptions& o, int64_t C, int, const Shape&) -> ModulePtr {
         check_groups(o, C);
         return std::make_shared<GroupNorm>(o.groups, C, o.eps);
       }},
      {"frn", "Filter Response Normalization + TLU", "Singh & Krishnan 2019", "filter_response_norm.hpp", "", true,
       true, false, R::maps, SB::ignored, "", false, true,
       [](const NormOptions&, int64_t C, int, const Shape&) -> ModulePtr {
         return std::make_shared<FilterResponseNorm>(C);  // eps 1e-6 as the paper
       }},
      {"evonorm-s0", "EvoNorm-S0", "Liu et al. 2020", "evonorm.hpp", "--groups", true, true, false, R::maps,
       SB::ignored, "", false, true,
       [](const NormOptions& o, int64_t C, int, const Shape&) -> ModulePtr {
         check_groups(o, C);
         return std::make_shared<EvoNormS0>(C, o.groups, o.eps);
       }},
      {"evonorm-b0", "EvoNorm-B0", "Liu et al. 2020", "evonorm.hpp", "", true, true, false, R::maps, SB::refused,
       "has a batch variance without statistics groups", false, true,
       [](const NormOptions& o, int64_t C, int, const Shape&) -> ModulePtr {
         return std::make_shared<EvoNormB0>(C, o.eps, o.momentum);
       }},
      {"pn", "PowerNorm: no mean subtracted, a running quadratic mean after a warm-up, approximate backward",
       "Shen et al. 2020", "power_norm.hpp", "--pn-warmup, --pn-backward, --pn-groups, --pn-alpha-bkw", false, true,
       true, R::shape, SB::refused, "has a batch quadratic mean without statistics groups", false, false,
       [](const NormOptions& o, int64_t, int, const Shape& fs) -> ModulePtr {
         PowerNormOptions po;
         po.eps = o.eps;
         po.alpha_fwd = 1.0f - o.momentum;  // running = (1 - momentum) running + momentum batch
         po.alpha_bkw = o.pn_alpha_bkw;
         po.warmup_steps = o.pn_warmup_steps;
         po.groups = o.pn_groups;
         po.backward = parse_power_norm_backward(o.pn_backward);
         return std::make_shared<PowerNorm>(fs[0], po);
       }},
  };
  return table;
}

std::vector<std::string> norm_names() {
  std::vector<std::string> names;
  for (const NormInfo& n : norm_registry()) names.push_back(n.name);
  return names;
}

static std::string joined_names() {
  std::string s;
  for (const auto& n : norm_names()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

const NormInfo& norm_info(const std::string& name) {
  for (const NormInfo& n : norm_registry())
    if (name == n.name) return n;
  throw Error("unknown norm '" + name + "'; valid names: " + joined_names());
}

void validate_norm_options(const NormOptions& o) {
  const NormInfo& info = norm_info(o.name);
  NL_CHECK(o.eps > 0.0f, "norm '", o.name, "': eps must be positive, got ", o.eps);
  NL_CHECK(o.groups >= 1, "norm '", o.name, "': groups must be >= 1, got ", o.groups);
  NL_CHECK(o.stat_batch == 0 || o.stat_batch >= 2, "norm '", o.name,
           "': stat_batch must be 0 (the whole batch) or >= 2 examples, got ", o.stat_batch);
  NL_CHECK(o.ghost_batch >= 2, "norm 'gbn': ghost_batch must be >= 2, got ", o.ghost_batch);
  NL_CHECK(info.stat_batch != NormInfo::StatBatch::refused || o.stat_batch == 0, "norm '", o.name, "' ",
           info.stat_batch_note, ": stat_batch must be 0, got ", o.stat_batch);
  NL_CHECK(o.r_max >= 1.0f && o.d_max >= 0.0f, "norm 'brn': need r_max >= 1 and d_max >= 0, got r_max=", o.r_max,
           " d_max=", o.d_max);
  NL_CHECK(o.renorm_warmup_steps >= 0, "norm 'brn': renorm_warmup_steps must be >= 0");
  NL_CHECK(o.pn_warmup_steps >= 0 && o.pn_groups >= 1, "norm 'pn': need pn_warmup_steps >= 0 and pn_groups >= 1, got ",
           o.pn_warmup_steps, " and ", o.pn_groups);
  NL_CHECK(o.pn_alpha_bkw >= 0.0f && o.pn_alpha_bkw <= 1.0f, "norm 'pn': pn_alpha_bkw must be in [0, 1], got ",
           o.pn_alpha_bkw);
  NL_CHECK(o.pn_backward == "approximate" || o.pn_backward == "exact", "norm 'pn': pn_backward must be approximate ",
           "or exact, got '", o.pn_backward, "'");
  NL_CHECK(o.name != "pn" || (o.momentum >= 0.0f && o.momentum <= 1.0f), "norm 'pn': its running quadratic mean ",
           "needs a momentum in [0, 1] (1 - alpha_fwd; no cumulative average), got ", o.momentum);
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
  const NormInfo& info = norm_info(o.name);
  const int64_t C = channels_of(fs, site);
  const bool defined = site == NormSite::conv ? info.conv : site == NormSite::features ? info.features : info.tokens;
  NL_CHECK(defined, "norm '", o.name, "' is not defined at the ", site_name(site), " site (",
           !info.conv ? "it normalizes feature vectors and tokens, the features last; not conv maps)"
           : info.reads == NormInfo::Reads::maps ? "it normalizes over the H, W positions of conv maps" : "",
           !info.conv ? "" : info.features ? "; features work as 1x1 maps, tokens do not)" : "; use ln or gn for vectors and tokens)");
  std::shared_ptr<Module> m = info.make(o, C, site == NormSite::conv ? 2 : 1, fs);
  if (info.reads == NormInfo::Reads::maps && site == NormSite::features) return std::make_shared<FeaturesAsMaps>(m);
  if (info.reads != NormInfo::Reads::channel || site != NormSite::tokens || dynamic_cast<Identity*>(m.get())) return m;
  // Per-feature layers take [B*T, D] rows at the tokens site; BN with groups takes [B, D, T].
  const auto* bsn = dynamic_cast<BatchStatNorm*>(m.get());
  if (bsn && bsn->stat_batch() > 0) return std::make_shared<SequencesAsSamples>(m);
  return std::make_shared<TokensAsRows>(m);
}

// A norm followed by ReLU, fused: the conv - norm - relu of every CNN here, for bn, gn, in and
// ln. Memory-bound both ways, so the ReLU's own pass over the activations (and the tensor between
// the two) is worth removing (docs/performance.md). Exact classes only: a subclass with its own
// forward (SyncBatchNorm) runs as two ops. Norm::forward_relu does the work.
template <class Norm>
class NormReLU : public Module {
 public:
  NormReLU(std::shared_ptr<Norm> norm, std::shared_ptr<Module> relu)
      : norm_(register_module("0", std::move(norm))), relu_(register_module("1", std::move(relu))) {}
  Tensor forward(const Tensor& x) override { return norm_->forward_relu(x); }
  std::string name() const override { return "Sequential(" + norm_->name() + ", ReLU; fused)"; }

 private:
  std::shared_ptr<Norm> norm_;
  std::shared_ptr<Module> relu_;  // for the module list; its work is done in forward_relu
};

// norm fused with relu when its class is exactly Norm, else null.
template <class Norm>
std::shared_ptr<Module> fuse_relu(const std::shared_ptr<Module>& norm, const std::shared_ptr<Module>& relu) {
  auto n = std::dynamic_pointer_cast<Norm>(norm);
  if (!n || typeid(*n) != typeid(Norm)) return nullptr;
  return std::make_shared<NormReLU<Norm>>(n, relu);
}

std::shared_ptr<Module> make_norm_act(const NormOptions& o, const Shape& fs, NormSite site,
                                      const std::string& activation) {
  auto act = make_activation(activation);  // validates the name even when unused
  auto norm = make_norm(o, fs, site);
  if (norm_info(o.name).includes_activation) return norm;
  if (dynamic_cast<Identity*>(act.get())) return norm;
  // A NoNorm stays in front of its activation only for the diagnostics (it has no parameters or
  // buffers, so checkpoints do not change); any other identity is dropped.
  if (dynamic_cast<Identity*>(norm.get()) && !dynamic_cast<NoNorm*>(norm.get())) return act;
  norm->set_next_activation(activation);  // diagnostics count saturated units before sigmoid / tanh
  if (activation == "relu") {
    for (auto fused : {fuse_relu<BatchNorm>(norm, act), fuse_relu<GroupNorm>(norm, act),
                       fuse_relu<InstanceNorm2d>(norm, act), fuse_relu<LayerNorm>(norm, act)})
      if (fused) return fused;
  }
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
