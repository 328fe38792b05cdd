// normlab layers: activation modules and Sequential. See activation.hpp.
#include "layers/activation.hpp"

namespace nl {

Sequential::Sequential(std::vector<std::shared_ptr<Module>> modules) {
  for (auto& m : modules) append(std::move(m));
}

void Sequential::append(std::shared_ptr<Module> m) {
  NL_CHECK(m != nullptr, "Sequential: cannot append a null module");
  register_module(std::to_string(modules_.size()), m);
  modules_.push_back(std::move(m));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& m : modules_) y = m->forward(y);
  return y;
}

std::string Sequential::name() const {
  std::string s = "Sequential(";
  for (size_t i = 0; i < modules_.size(); ++i) s += (i ? ", " : "") + modules_[i]->name();
  return s + ")";
}

std::vector<std::string> activation_names() { return {"relu", "sigmoid", "tanh", "gelu", "none", "identity"}; }

std::shared_ptr<Module> make_activation(const std::string& name) {
  if (name == "relu") return std::make_shared<ReLU>();
  if (name == "sigmoid") return std::make_shared<Sigmoid>();
  if (name == "tanh") return std::make_shared<Tanh>();
  if (name == "gelu") return std::make_shared<GELU>();
  if (name == "none" || name == "identity") return std::make_shared<Identity>();
  std::string valid;
  for (const auto& n : activation_names()) valid += (valid.empty() ? "" : ", ") + n;
  throw Error("make_activation: unknown activation '" + name + "'; valid names: " + valid);
}

}  // namespace nl
