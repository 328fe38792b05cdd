// normlab layers: the Module base class. A module owns named parameters (trained),
// named buffers (state such as running statistics, saved in checkpoints but not trained)
// and child modules. Optimizers never see modules: they get parameters() as tensors.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/autograd.hpp"
#include "core/ops.hpp"
#include "core/tensor.hpp"

namespace nl {

class NormObserver;  // layers/diagnostics.hpp

class Module {
 public:
  virtual ~Module() = default;
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
  virtual std::string name() const = 0;  // e.g. "BatchNorm2d(32)"

  // Recursive, with dotted names ("block1.norm.weight"), in registration order.
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  std::vector<Tensor> parameters() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }

  void train(bool on = true);  // recursive
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();  // drops every parameter's gradient

  // Diagnostics (layers/diagnostics.hpp): attach_norm_observer sets these on every module of a
  // model; norm layers report to the observer, other modules ignore it. None attached: nothing.
  void set_norm_observer(NormObserver* observer, std::string layer_name);
  // The activation the factory put after this norm ("sigmoid", ...; "" when unknown).
  void set_next_activation(std::string activation) { next_activation_ = std::move(activation); }
  const std::string& next_activation() const { return next_activation_; }

 protected:
  Tensor register_parameter(const std::string& name, Tensor t);  // sets requires_grad
  Tensor register_buffer(const std::string& name, Tensor t);
  // Norm layers call these at the start of forward (before any buffer changes) and on the
  // output they return, and use what they return in place of x and y: x and y themselves, or,
  // when the observer asks for gradients, the same values behind a grad_tap (core/autograd.hpp)
  // that shows it the gradient the layer passes to its input and the one reaching its output.
  // One pointer test when no observer is attached.
  [[nodiscard]] Tensor report_norm_input(const Tensor& x) const { return observer_ ? notify_norm_input(x) : x; }
  [[nodiscard]] Tensor report_norm_output(const Tensor& y) const { return observer_ ? notify_norm_output(y) : y; }
  bool has_norm_observer() const { return observer_ != nullptr; }
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }

 private:
  std::vector<std::pair<std::string, Tensor>> parameters_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  NormObserver* observer_ = nullptr;
  std::string layer_name_, next_activation_;
  Tensor notify_norm_input(const Tensor& x) const;
  Tensor notify_norm_output(const Tensor& y) const;
};

}  // namespace nl
