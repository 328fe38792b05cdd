// normlab layers: activation functions as Modules (no parameters), so a block can be a list
// of modules: conv -> norm -> activation. Each one calls the op of the same name in
// core/ops.hpp; the op owns the forward, the backward and their tests.
//
//   auto act = make_activation("relu");   // relu, sigmoid, tanh, gelu, none/identity
//   Tensor y = (*act)(x);
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "layers/module.hpp"

namespace nl {

class Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
  std::string name() const override { return "Identity"; }
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return relu(x); }
  std::string name() const override { return "ReLU"; }
};

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override { return sigmoid(x); }
  std::string name() const override { return "Sigmoid"; }
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override { return tanh(x); }
  std::string name() const override { return "Tanh"; }
};

class GELU : public Module {  // exact erf form, PyTorch's default
 public:
  Tensor forward(const Tensor& x) override { return gelu(x); }
  std::string name() const override { return "GELU"; }
};

// Runs children in order (registered as "0", "1", ...), like torch.nn.Sequential.
class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules);
  void append(std::shared_ptr<Module> m);
  Tensor forward(const Tensor& x) override;
  std::string name() const override;
  const std::vector<std::shared_ptr<Module>>& modules() const { return modules_; }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

// "relu", "sigmoid", "tanh", "gelu", "none" or "identity"; anything else throws nl::Error
// listing the valid names.
std::shared_ptr<Module> make_activation(const std::string& name);
std::vector<std::string> activation_names();

}  // namespace nl
