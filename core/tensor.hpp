// normlab core: a float32 n-dimensional tensor with shared storage and autograd hooks.
//
// A Tensor is a cheap handle (a shared_ptr) to a TensorImpl. Views (reshape of a
// contiguous tensor, permute, transpose, slice, expand) share the Storage and differ only
// in shape/strides/offset. Kernels work on contiguous memory: ops call contiguous() first,
// which is free when the tensor already is.
//
// Autograd (see autograd.hpp): a tensor produced by an op while grad mode is on and some
// input requires grad carries a grad_fn node. Tensor::backward() runs the graph.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace nl {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& shape);  // "[2, 3, 4]"
int64_t shape_numel(const Shape& shape);
Shape contiguous_strides(const Shape& shape);

// Errors a user can cause (bad shapes, bad arguments) throw nl::Error with a message that
// names the operation and the offending shapes/values.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// NL_CHECK(cond, fmt-style message parts...) throws nl::Error when cond is false.
#define NL_CHECK(cond, ...)                                   \
  do {                                                        \
    if (!(cond)) throw ::nl::Error(::nl::detail::concat(__VA_ARGS__)); \
  } while (0)

namespace detail {
std::string to_str(const std::string& s);
std::string to_str(const char* s);
std::string to_str(const Shape& s);
std::string to_str(double v);
std::string to_str(float v);
std::string to_str(int64_t v);
std::string to_str(int v);
std::string to_str(size_t v);
std::string to_str(bool v);
template <typename... Args>
std::string concat(const Args&... args) {
  std::string out;
  ((out += to_str(args)), ...);
  return out;
}
}  // namespace detail

// A 64-byte aligned float buffer, shared by a tensor and all of its views.
class Storage {
 public:
  explicit Storage(int64_t numel);  // contents uninitialized
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  float* data() { return data_; }
  int64_t numel() const { return numel_; }

 private:
  void* block_;  // what malloc returned; data_ is its first 64-byte boundary
  float* data_;
  int64_t numel_;
};

struct Node;
class Tensor;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Shape strides;  // in elements
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // accumulated gradient, contiguous, same shape
  std::shared_ptr<Node> grad_fn;     // the op that produced this tensor (null for leaves)
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // --- creation (always contiguous) ---
  static Tensor empty(const Shape& shape);  // uninitialized
  static Tensor zeros(const Shape& shape);
  static Tensor ones(const Shape& shape);
  static Tensor full(const Shape& shape, float value);
  static Tensor scalar(float value);  // shape []
  static Tensor from_vector(const Shape& shape, const std::vector<float>& values);
  static Tensor zeros_like(const Tensor& t) { return zeros(t.shape()); }

  // --- metadata ---
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl_->shape; }
  const Shape& strides() const { return impl_->strides; }
  int64_t dim() const { return static_cast<int64_t>(impl_->shape.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(impl_->shape); }
  int64_t offset() const { return impl_->offset; }
  bool is_contiguous() const;
  bool same_storage(const Tensor& other) const { return impl_->storage == other.impl_->storage; }

  // --- data access ---
  // Pointer to element [0,...,0]. Index with strides() unless is_contiguous().
  float* data() const { return impl_->storage->data() + impl_->offset; }
  float item() const;                     // a one-element tensor's value
  std::vector<float> to_vector() const;   // row-major copy
  float at(std::initializer_list<int64_t> index) const;

  // --- autograd ---
  bool requires_grad() const { return impl_->requires_grad; }
  Tensor& set_requires_grad(bool on = true);  // leaves only
  bool is_leaf() const { return impl_->grad_fn == nullptr; }
  Tensor grad() const;  // undefined until a backward pass reached this tensor
  void zero_grad();     // drops the gradient (the next backward assigns a fresh one)
  void set_grad(const Tensor& g);
  // Backpropagate from this tensor. A one-element tensor may omit grad_output (seed 1).
  void backward(const Tensor& grad_output = Tensor()) const;
  Tensor detach() const;  // shares storage, no history, requires_grad false

  // --- views and copies (differentiable) ---
  Tensor view(const Shape& shape) const;     // needs contiguous input; one dim may be -1
  Tensor reshape(const Shape& shape) const;  // view when possible, else copy
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor permute(const Shape& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;  // slice + drop the dim
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor expand(const Shape& shape) const;  // broadcast view, stride 0 on expanded dims
  Tensor contiguous() const;                // self if contiguous, else a copy
  Tensor clone() const;                     // always a fresh contiguous copy

  // --- in-place, outside autograd (initialisation, optimizers, running statistics) ---
  Tensor& fill_(float value);
  Tensor& copy_(const Tensor& src);  // same numel; src is read in row-major order
  Tensor& add_(const Tensor& other, float alpha = 1.0f);  // same shape
  Tensor& mul_(float factor);

  std::shared_ptr<TensorImpl> impl() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Normalizes a possibly negative dim against rank; throws nl::Error naming `op` if out of range.
int64_t wrap_dim(int64_t dim, int64_t rank, const char* op);

}  // namespace nl
