// normlab optim: optimizers see parameter tensors, never modules.
//
// Each optimizer holds a list of ParamGroups (tensors + per-group options such as weight
// decay, so norm parameters and biases can be excluded from decay) and per-parameter state
// (momentum / Adam moments) as tensors, which checkpoints save with state().
//
//   SGD      v = mu * v + (g + wd * p);  p -= lr * (nesterov ? g + wd*p + mu * v : v)   (PyTorch's form)
//   Adam     m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= lr * m_hat / (sqrt(v_hat) + eps)
//            (weight decay added to g: L2 regularisation)
//   AdamW    same, but decay is decoupled: p -= lr * wd * p before the Adam step
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/tensor.hpp"

namespace nl {

struct ParamGroup {
  std::vector<Tensor> params;
  float weight_decay = 0.0f;
};

class Optimizer {
 public:
  explicit Optimizer(std::vector<ParamGroup> groups, float lr);
  virtual ~Optimizer() = default;
  virtual void step() = 0;  // parameters without a gradient are skipped
  void zero_grad();
  float lr() const { return lr_; }
  void set_lr(float lr);
  // Named state tensors for checkpoints ("<param index>.<slot>") and the step count.
  virtual std::vector<std::pair<std::string, Tensor>> state() = 0;
  int64_t steps() const { return steps_; }
  void set_steps(int64_t s) { steps_ = s; }

 protected:
  // Calls fn(group index, param index, param, grad) for every parameter that has a gradient.
  template <typename Fn>
  void for_each_param_with_grad(Fn&& fn) {
    for (size_t gi = 0; gi < groups_.size(); ++gi)
      for (size_t pi = 0; pi < groups_[gi].params.size(); ++pi) {
        Tensor grad = groups_[gi].params[pi].grad();
        if (grad.defined()) fn(gi, pi, groups_[gi].params[pi], grad);
      }
  }
  std::vector<ParamGroup> groups_;
  float lr_;
  int64_t steps_ = 0;
};

struct SGDOptions {
  float lr = 0.1f;
  float momentum = 0.0f;
  bool nesterov = false;
};
class SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, SGDOptions options);
  void step() override;
  std::vector<std::pair<std::string, Tensor>> state() override;

 private:
  SGDOptions options_;
  std::vector<std::vector<Tensor>> velocity_;  // [group][param], allocated on first step
};

struct AdamOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.999f;
  float eps = 1e-8f;
  bool decoupled_weight_decay = false;  // true: AdamW
};
class Adam : public Optimizer {
 public:
  Adam(std::vector<ParamGroup> groups, AdamOptions options);
  void step() override;
  std::vector<std::pair<std::string, Tensor>> state() override;

 private:
  AdamOptions options_;
  std::vector<std::vector<Tensor>> m_, v_;
};

// Scales all gradients so their global L2 norm is at most max_norm; returns the norm before.
float clip_grad_norm(const std::vector<Tensor>& params, float max_norm);

}  // namespace nl
