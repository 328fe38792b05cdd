// normlab layers: Module bookkeeping. See module.hpp.
#include "layers/module.hpp"

#include "layers/diagnostics.hpp"

namespace nl {

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  auto out = parameters_;
  for (const auto& [child_name, child] : children_)
    for (auto& [name, t] : child->named_parameters()) out.emplace_back(child_name + "." + name, t);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  auto out = buffers_;
  for (const auto& [child_name, child] : children_)
    for (auto& [name, t] : child->named_buffers()) out.emplace_back(child_name + "." + name, t);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

void Module::set_norm_observer(NormObserver* observer, std::string layer_name) {
  observer_ = observer;
  layer_name_ = std::move(layer_name);
}

Tensor Module::notify_norm_input(const Tensor& x) const {
  NormObserver* observer = observer_;
  observer->norm_input(layer_name_, *this, x);
  if (!observer->wants_input_gradient(layer_name_)) return x;
  return grad_tap(x, [observer, layer = layer_name_](const Tensor& g) { observer->norm_input_gradient(layer, g); });
}

Tensor Module::notify_norm_output(const Tensor& y) const {
  NormObserver* observer = observer_;
  observer->norm_output(layer_name_, *this, y);
  if (!observer->wants_output_gradient(layer_name_)) return y;
  return grad_tap(y, [observer, layer = layer_name_](const Tensor& g) { observer->norm_output_gradient(layer, g); });
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() {
  for (auto& t : parameters()) t.zero_grad();
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  t.set_requires_grad(true);
  parameters_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  buffers_.emplace_back(name, t);
  return t;
}

}  // namespace nl
