// normlab optim: SGD, Adam, AdamW and gradient clipping. See optimizer.hpp for the formulas.
#include "optim/optimizer.hpp"

#include <cmath>

#include "core/autograd.hpp"
#include "core/parallel.hpp"

namespace nl {

Optimizer::Optimizer(std::vector<ParamGroup> groups, float lr) : groups_(std::move(groups)), lr_(lr) {
  NL_CHECK(lr >= 0.0f && std::isfinite(lr), "optimizer: learning rate must be >= 0, got ", lr);
}

void Optimizer::zero_grad() {
  for (auto& group : groups_)
    for (auto& p : group.params) p.zero_grad();
}

void Optimizer::set_lr(float lr) {
  NL_CHECK(lr >= 0.0f && std::isfinite(lr), "optimizer: learning rate must be >= 0, got ", lr);
  lr_ = lr;
}

static std::vector<std::vector<Tensor>> zeros_like_groups(const std::vector<ParamGroup>& groups) {
  std::vector<std::vector<Tensor>> out;
  for (const auto& group : groups) {
    out.emplace_back();
    for (const auto& p : group.params) out.back().push_back(Tensor::zeros(p.shape()));
  }
  return out;
}

static std::vector<std::pair<std::string, Tensor>> flatten_state(
    const std::vector<std::pair<std::string, const std::vector<std::vector<Tensor>>*>>& slots) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& [slot, tensors] : slots) {
    int64_t index = 0;
    for (const auto& group : *tensors)
      for (const auto& t : group) out.emplace_back(std::to_string(index++) + "." + slot, t);
  }
  return out;
}

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions options) : Optimizer(std::move(groups), options.lr), options_(options) {
  NL_CHECK(options.momentum >= 0.0f, "SGD: momentum must be >= 0, got ", options.momentum);
  NL_CHECK(!options.nesterov || options.momentum > 0.0f, "SGD: Nesterov needs momentum > 0");
  velocity_ = zeros_like_groups(groups_);
}

// One SGD step on elements [begin, end). Loop-invariant values arrive as parameters (locals,
// not members read through `this` or a lambda's captures), so the compiler unswitches the
// loop and vectorizes it: this pass showed in CNN training profiles.
// The velocity starts at zero, so the first step sets v = d, as PyTorch's buffer does.
static void sgd_update(float* w, const float* g, float* v, int64_t begin, int64_t end, float lr, float wd, float mu,
                       bool nesterov) {
  for (int64_t i = begin; i < end; ++i) {
    float d = g[i] + wd * w[i];
    if (mu != 0.0f) {
      v[i] = mu * v[i] + d;
      d = nesterov ? d + mu * v[i] : v[i];
    }
    w[i] -= lr * d;
  }
}

void SGD::step() {
  ++steps_;
  for_each_param_with_grad([&](size_t gi, size_t pi, Tensor& p, const Tensor& grad) {
    float* w = p.data();
    const float* g = grad.data();
    float* v = velocity_[gi][pi].data();
    const float wd = groups_[gi].weight_decay, mu = options_.momentum, lr = lr_;
    const bool nesterov = options_.nesterov;
    // Bound by moving w, g and v (5 floats per parameter: 7 MB a step for the CIFAR CNN), not
    // by arithmetic; a second core brings its own cache bandwidth, so large tensors are split.
    // Every element is independent: the same bits for any split.
    parallel_for(p.numel(), 1 << 15, [=](int64_t begin, int64_t end) {
      sgd_update(w, g, v, begin, end, lr, wd, mu, nesterov);
    });
  });
}

std::vector<std::pair<std::string, Tensor>> SGD::state() { return flatten_state({{"momentum", &velocity_}}); }

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options) : Optimizer(std::move(groups), options.lr), options_(options) {
  m_ = zeros_like_groups(groups_);
  v_ = zeros_like_groups(groups_);
}

// One Adam step on elements [begin, end), with loop-invariant values as parameters so the loop
// is unswitched and vectorized, as sgd_update (the sqrt vectorizes because this library is
// built with -fno-math-errno: CMakeLists.txt). The vector sqrt and division round exactly as
// the scalar ones, so the bits are those of the plain loop; this step was scalar before and
// took 4% of a Transformer step.
static void adam_update(float* w, const float* g, float* m, float* v, int64_t begin, int64_t end, float b1, float b2,
                        float step_size, float sqrt_bias2, float eps, float lr_wd, float wd, bool decoupled) {
  for (int64_t i = begin; i < end; ++i) {
    float d = g[i];
    if (decoupled) w[i] -= lr_wd * w[i];
    else d += wd * w[i];
    m[i] = b1 * m[i] + (1.0f - b1) * d;
    v[i] = b2 * v[i] + (1.0f - b2) * d * d;
    w[i] -= step_size * m[i] / (std::sqrt(v[i]) / sqrt_bias2 + eps);
  }
}

void Adam::step() {
  ++steps_;
  const float b1 = options_.beta1, b2 = options_.beta2;
  const float bias1 = 1.0f - std::pow(b1, static_cast<float>(steps_));
  const float bias2 = 1.0f - std::pow(b2, static_cast<float>(steps_));
  const float step_size = lr_ / bias1, sqrt_bias2 = std::sqrt(bias2);
  for_each_param_with_grad([&](size_t gi, size_t pi, Tensor& p, const Tensor& grad) {
    float* w = p.data();
    const float* g = grad.data();
    float* m = m_[gi][pi].data();
    float* v = v_[gi][pi].data();
    const bool decoupled = options_.decoupled_weight_decay;
    const float eps = options_.eps, wd = groups_[gi].weight_decay, lr_wd = lr_ * wd;
    // Every element is independent (same bits for any split); the sqrt and division make
    // this loop compute-bound, so large tensors are worth splitting across threads.
    parallel_for(p.numel(), 1 << 15, [=](int64_t begin, int64_t end) {
      adam_update(w, g, m, v, begin, end, b1, b2, step_size, sqrt_bias2, eps, lr_wd, wd, decoupled);
    });
  });
}

std::vector<std::pair<std::string, Tensor>> Adam::state() {
  return flatten_state({{"exp_avg", &m_}, {"exp_avg_sq", &v_}});
}

float clip_grad_norm(const std::vector<Tensor>& params, float max_norm) {
  double total = 0.0;
  for (const auto& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    const float* d = g.data();
    for (int64_t i = 0; i < g.numel(); ++i) total += static_cast<double>(d[i]) * d[i];
  }
  const float norm = static_cast<float>(std::sqrt(total));
  const float scale = max_norm / (norm + 1e-6f);
  if (scale < 1.0f) {
    for (const auto& p : params) {
      Tensor g = p.grad();
      if (g.defined()) g.mul_(scale);
    }
  }
  return norm;
}

}  // namespace nl
