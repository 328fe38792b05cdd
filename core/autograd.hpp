// normlab core: define-by-run reverse-mode autograd, the micrograd idea in C++.
//
// Every differentiable op computes its output, then calls record(): if grad mode is on
// and any input requires grad, the output gets a Node holding the inputs and a closure.
// The closure receives d(loss)/d(output) and *adds* each input's local gradient into that
// input with accumulate_grad(). Tensor::backward() sorts the graph topologically and runs
// the closures in reverse order, then frees the graph (non-leaf grads and nodes).
//
//   Tensor y = ...;                         // forward: y = exp(x)
//   const Tensor y_values = y.detach();     // y's storage, without y's node
//   return record(y, "exp", {x}, [x, y_values](const Tensor& gy) {
//     if (x.requires_grad()) accumulate_grad(x, mul(gy, y_values));   // d exp(x) = exp(x) dx
//   });
//
// Closures run with grad mode off, so ops used inside them build no graph.
// A closure must never capture its own output y: y's node holds the closure, so the
// closure holding y would be a reference cycle, and a graph that is never run backward
// (an eval forward with grad on, an exception) would leak. Capture detach()ed tensors of
// outputs (the same values, no node); inputs may be captured as they are.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace nl {

struct Node {
  const char* name;
  std::vector<Tensor> inputs;
  std::function<void(const Tensor& grad_output)> backward;
};

// Attach a backward closure to `out` (when needed) and return it.
Tensor record(Tensor out, const char* name, std::vector<Tensor> inputs,
              std::function<void(const Tensor& grad_output)> backward);

// Add g into t's gradient (allocating it on first use). g must have t's shape.
void accumulate_grad(const Tensor& t, const Tensor& g);

// Seeing a gradient the tape would free: an identity op. Returns a tensor with x's values (its
// storage) whose backward calls on_grad(gradient arriving at it) and then hands that gradient
// to x unchanged. Use the returned tensor where x would have been used: on_grad then sees the
// sum over exactly those uses. Returns x itself when no graph is being built through x.
// on_grad must read the gradient, not keep it: handed on, the same buffer may become x's
// gradient and have later contributions added into it.
Tensor grad_tap(const Tensor& x, std::function<void(const Tensor& grad)> on_grad);

// Grad mode: on by default, thread-local.
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace nl
