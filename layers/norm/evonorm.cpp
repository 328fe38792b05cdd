// normlab norms: EvoNorm-S0 / B0 as composites of primitive ops. See evonorm.hpp.
#include "layers/norm/evonorm.hpp"

namespace nl {

static Shape channel_shape(int64_t C, int64_t rank) {
  Shape s(rank, 1);
  s[1] = C;
  return s;
}

static void check_evonorm(const Tensor& x, int64_t C, const std::string& layer) {
  NL_CHECK((x.dim() == 4 || x.dim() == 2) && x.size(1) == C, layer, ": expected input [N, ", C, ", H, W] or [N, ", C,
           "], got shape ", x.shape());
}

// Biased variance of x over `dims` (keepdim), from primitive ops.
static Tensor biased_var(const Tensor& x, const std::vector<int64_t>& dims) {
  Tensor d = x - mean(x, dims, true);
  return mean(d * d, dims, true);
}

EvoNormS0::EvoNormS0(int64_t C, int64_t G, float eps_) : num_features(C), groups(G), eps(eps_) {
  NL_CHECK(G >= 1 && C >= 1 && C % G == 0, "EvoNormS0: groups=", G, " must divide num_channels=", C);
  weight = register_parameter("weight", Tensor::ones({C}));
  bias = register_parameter("bias", Tensor::zeros({C}));
  v = register_parameter("v", Tensor::ones({C}));
}

Tensor EvoNormS0::forward(const Tensor& x) {
  check_evonorm(x, num_features, name());
  const Shape cs = channel_shape(num_features, x.dim());
  Tensor xg = x.reshape({x.size(0), groups, -1});                                   // [N, G, C/G * H * W]
  Tensor std = sqrt(biased_var(xg, {2}) + eps).expand({x.size(0), groups, xg.size(2)}).reshape(x.shape());
  Tensor num = x * sigmoid(v.reshape(cs) * x);
  return num / std * weight.reshape(cs) + bias.reshape(cs);
}

std::string EvoNormS0::name() const {
  return "EvoNormS0(" + std::to_string(num_features) + ", groups=" + std::to_string(groups) + ")";
}

EvoNormB0::EvoNormB0(int64_t C, float eps_, float momentum_) : num_features(C), eps(eps_), momentum(momentum_) {
  NL_CHECK(C >= 1, "EvoNormB0: num_features must be positive, got ", C);
  weight = register_parameter("weight", Tensor::ones({C}));
  bias = register_parameter("bias", Tensor::zeros({C}));
  v = register_parameter("v", Tensor::ones({C}));
  running_var = register_buffer("running_var", Tensor::ones({C}));
}

Tensor EvoNormB0::forward(const Tensor& x) {
  check_evonorm(x, num_features, name());
  const Shape cs = channel_shape(num_features, x.dim());
  std::vector<int64_t> batch_dims{0}, inst_dims;
  for (int64_t d = 2; d < x.dim(); ++d) {
    batch_dims.push_back(d);
    inst_dims.push_back(d);
  }
  Tensor batch_std;
  if (is_training()) {
    const int64_t M = x.numel() / num_features;
    NL_CHECK(M > 1, name(), ": training needs more than 1 value per channel, got input shape ", x.shape());
    Tensor var = biased_var(x, batch_dims);  // [1, C, 1, 1]
    batch_std = sqrt(var + eps);
    NoGradGuard no_grad;
    ++num_batches_tracked;
    const float m = momentum >= 0.0f ? momentum : 1.0f / static_cast<float>(num_batches_tracked);
    const Tensor vc = var.contiguous();
    for (int64_t c = 0; c < num_features; ++c)
      running_var.data()[c] = (1.0f - m) * running_var.data()[c] +
                              m * vc.data()[c] * static_cast<float>(M) / static_cast<float>(M - 1);
  } else {
    batch_std = sqrt(running_var.reshape(cs) + eps);
  }
  // instance_std: with no spatial dims (an [N, C] input) the instance variance is 0.
  Tensor inst_std = inst_dims.empty() ? sqrt(x * 0.0f + eps) : sqrt(biased_var(x, inst_dims) + eps);
  Tensor b = v.reshape(cs) * x + inst_std;
  Tensor den = b + relu(batch_std - b);  // max(batch_std, b)
  return x / den * weight.reshape(cs) + bias.reshape(cs);
}

std::string EvoNormB0::name() const { return "EvoNormB0(" + std::to_string(num_features) + ")"; }

}  // namespace nl
