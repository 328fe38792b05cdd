// normlab core: define-by-run reverse-mode autograd, the micrograd idea in C++.
//
// Every differentiable op computes its output, then calls record(): if grad mode is on
// and any input requires grad, the output gets a Node holding the inputs and a closure.
// The closure receives d(loss)/d(output) and *adds* each input's local gradient into that
// input with accumulate_grad(). Tensor::backward() sorts the graph topologically and runs
// the closures in reverse order, then frees the graph (non-leaf grads and nodes).
//
//   Tensor y = ...;                         // forward
//   return record(y, "exp", {x}, [x, y](const Tensor& gy) {
//     if (x.requires_grad()) accumulate_grad(x, mul(gy, y));   // d exp(x) = exp(x) dx
//   });
//
// Closures run with grad mode off, so ops used inside them build no graph.
// A closure must not capture its own output strongly *with* its node (that would be a
// cycle); capturing y above is fine because record() stores the closure in y's node only
// after y exists, and backward() clears the node afterwards. Prefer capturing raw
// buffers (detach()) of outputs.
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
