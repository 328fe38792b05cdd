// normlab core: the backward pass. See autograd.hpp for the model.
#include "core/autograd.hpp"

#include <unordered_set>

#include "core/kernels/kernels.hpp"

namespace nl {

namespace {
thread_local bool g_grad_enabled = true;
}

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

Tensor record(Tensor out, const char* name, std::vector<Tensor> inputs,
              std::function<void(const Tensor& grad_output)> backward) {
  if (!g_grad_enabled) return out;
  bool needed = false;
  for (const Tensor& t : inputs) needed = needed || (t.defined() && t.requires_grad());
  if (!needed) return out;
  auto node = std::make_shared<Node>();
  node->name = name;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  out.impl()->grad_fn = std::move(node);
  out.impl()->requires_grad = true;
  return out;
}

void accumulate_grad(const Tensor& t, const Tensor& g) {
  if (!t.defined() || !t.requires_grad()) return;
  NL_CHECK(g.shape() == t.shape(), "autograd: gradient of shape ", g.shape(), " for a tensor of shape ", t.shape(),
           " (a backward function returned the wrong shape)");
  auto impl = t.impl();
  if (!impl->grad) {
    // First contribution. A fresh contiguous temporary that nobody else holds (the usual case:
    // accumulate_grad(x, mul(g, y))), or a node's own g passed on by its closure (backward
    // hands g over), is adopted as the gradient; anything that may alias another buffer (a
    // view, a saved tensor, the caller's seed) is copied. After adopting g, a closure's second
    // use of g sees use_count 3 and copies; if its two inputs are one tensor (x + x), the second
    // call adds g into g, i.e. 2g, as it should. So a closure must not read g again after
    // passing it to accumulate_grad twice (none does; add, add_scalar, clone and grad_tap pass g itself).
    const auto gi = g.impl();  // a copy of the handle: g's and this one make use_count 2
    const bool exclusive = gi.use_count() == 2 && gi->storage.use_count() == 1 && g.is_contiguous() &&
                           g.offset() == 0 && g.numel() == gi->storage->numel() && !gi->grad_fn && !gi->grad;
    impl->grad = exclusive ? gi : g.detach().clone().impl();
    impl->grad->requires_grad = false;
    return;
  }
  Tensor acc(impl->grad);
  Tensor gc = g.contiguous();
  kernels().axpy(1.0f, gc.data(), acc.data(), acc.numel());
}

Tensor grad_tap(const Tensor& x, std::function<void(const Tensor& grad)> on_grad) {
  if (!g_grad_enabled || !x.defined() || !x.requires_grad()) return x;
  return record(x.detach(), "grad_tap", {x}, [x, on_grad = std::move(on_grad)](const Tensor& g) {
    on_grad(g);
    accumulate_grad(x, g);
  });
}

void Tensor::backward(const Tensor& grad_output) const {
  NL_CHECK(requires_grad(), "backward: tensor does not require grad (no parameter or input needs a gradient)");
  Tensor seed = grad_output;
  if (!seed.defined()) {
    NL_CHECK(numel() == 1, "backward: grad_output can be omitted only for one-element tensors, got shape ", shape());
    seed = Tensor::ones(shape());
  }
  NL_CHECK(seed.shape() == shape(), "backward: grad_output shape ", seed.shape(), " != tensor shape ", shape());

  // Topological order by iterative depth-first search (graphs of long RNNs are deep).
  std::vector<std::shared_ptr<TensorImpl>> order;
  std::unordered_set<TensorImpl*> visited;
  std::vector<std::pair<std::shared_ptr<TensorImpl>, size_t>> stack{{impl_, 0}};
  visited.insert(impl_.get());
  while (!stack.empty()) {
    auto& [node_impl, next_input] = stack.back();
    const auto& fn = node_impl->grad_fn;
    if (fn && next_input < fn->inputs.size()) {
      const Tensor& in = fn->inputs[next_input++];
      if (in.defined() && in.requires_grad() && visited.insert(in.impl().get()).second) stack.push_back({in.impl(), 0});
      continue;
    }
    order.push_back(node_impl);
    stack.pop_back();
  }

  {
    NoGradGuard no_grad;  // closures build no graph
    if (!is_leaf() && !impl_->grad && seed.is_contiguous()) {
      // A non-leaf root's gradient is only read (by its own closure) and freed below, so it
      // can share the caller's seed instead of copying it. A leaf root keeps it as .grad: copy.
      impl_->grad = seed.detach().impl();
    } else {
      accumulate_grad(*this, seed);
    }
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      auto& impl = *it;
      if (!impl->grad_fn) continue;
      if (!impl->grad) continue;
      // Every contribution to this node's gradient has arrived, and only its closure reads it:
      // taken out, it is freed as soon as the closure returns (not at the end of backward), and
      // a closure that passes it on unchanged (add, clone) lets accumulate_grad adopt the
      // buffer instead of copying it.
      const Tensor g(std::move(impl->grad));
      impl->grad_fn->backward(g);
    }
  }
  // Free the graph: intermediate gradients and nodes (leaves keep their .grad).
  for (auto& impl : order) {
    if (impl->grad_fn) {
      impl->grad_fn.reset();
      impl->grad.reset();
    }
  }
}

}  // namespace nl
