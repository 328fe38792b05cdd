// normlab core: Tensor storage, metadata, views and copies. See tensor.hpp.
#include "core/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <malloc.h>
#include <new>

#include <fmt/format.h>

#include "core/autograd.hpp"
#include "core/ops.hpp"

namespace nl {

// ---------------------------------------------------------------- helpers
std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (int64_t i = static_cast<int64_t>(shape.size()) - 1; i >= 0; --i) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

int64_t wrap_dim(int64_t dim, int64_t rank, const char* op) {
  int64_t d = dim < 0 ? dim + rank : dim;
  NL_CHECK(d >= 0 && d < std::max<int64_t>(rank, 1), op, ": dim ", dim, " is out of range for a tensor of rank ", rank);
  return d;
}

namespace detail {
std::string to_str(const std::string& s) { return s; }
std::string to_str(const char* s) { return s; }
std::string to_str(const Shape& s) { return shape_str(s); }
std::string to_str(double v) { return fmt::format("{}", v); }
std::string to_str(float v) { return fmt::format("{}", v); }
std::string to_str(int64_t v) { return std::to_string(v); }
std::string to_str(int v) { return std::to_string(v); }
std::string to_str(size_t v) { return std::to_string(v); }
std::string to_str(bool v) { return v ? "true" : "false"; }
}  // namespace detail

// ---------------------------------------------------------------- storage
// glibc serves large blocks with mmap and returns them to the OS on free, so every big
// activation would be page-faulted afresh on each step (measured: a third of BatchNorm's time
// on 32 MB tensors). Keeping freed memory in the heap makes steady-state training allocate
// from recycled pages, as a caching allocator would. Done once, before the first tensor.
static const bool g_heap_tuned = [] {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
  return true;
}();

Storage::Storage(int64_t numel) : numel_(numel) {
  (void)g_heap_tuned;
  // 64-byte alignment (one cache line, one AVX-512 register) by hand, from plain malloc: a
  // block freed by aligned_alloc is too small for the next aligned_alloc of the same size
  // (glibc asks for the size plus the alignment and trims afterwards), so every large tensor
  // of a step took fresh pages from the top of the heap and page-faulted them in, until the
  // freed blocks happened to merge (BatchNorm1d 8192x256 forward + backward: 2048 faults and
  // ~4 ms instead of ~1.3 ms in 7 of the first 8 steps). Blocks of malloc's own
  // sizes are reused exactly.
  size_t bytes = static_cast<size_t>(std::max<int64_t>(numel, 1)) * sizeof(float);
  block_ = std::malloc(bytes + 64);
  if (!block_) throw std::bad_alloc();
  const auto address = reinterpret_cast<std::uintptr_t>(block_);
  data_ = reinterpret_cast<float*>((address + 63) / 64 * 64);
}

Storage::~Storage() { std::free(block_); }

// ---------------------------------------------------------------- creation
static Tensor make_tensor(std::shared_ptr<Storage> storage, int64_t offset, Shape shape, Shape strides) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->offset = offset;
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  return Tensor(std::move(impl));
}

Tensor Tensor::empty(const Shape& shape) {
  for (int64_t d : shape) NL_CHECK(d >= 0, "Tensor: negative dimension in shape ", shape);
  return make_tensor(std::make_shared<Storage>(shape_numel(shape)), 0, shape, contiguous_strides(shape));
}

Tensor Tensor::zeros(const Shape& shape) { return full(shape, 0.0f); }
Tensor Tensor::ones(const Shape& shape) { return full(shape, 1.0f); }

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape);
  std::fill_n(t.data(), t.numel(), value);
  return t;
}

Tensor Tensor::scalar(float value) { return full({}, value); }

Tensor Tensor::from_vector(const Shape& shape, const std::vector<float>& values) {
  NL_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "Tensor::from_vector: ", values.size(),
           " values do not fill shape ", shape);
  Tensor t = empty(shape);
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

// ---------------------------------------------------------------- metadata and access
int64_t Tensor::size(int64_t d) const { return impl_->shape[wrap_dim(d, dim(), "size")]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (impl_->shape[i] == 1) continue;
    if (impl_->strides[i] != expected) return false;
    expected *= impl_->shape[i];
  }
  return true;
}

// Visit every element's storage index in row-major order.
template <typename F>
static void for_each_index(const Shape& shape, const Shape& strides, int64_t offset, F&& f) {
  const int64_t rank = static_cast<int64_t>(shape.size());
  const int64_t n = shape_numel(shape);
  if (n == 0) return;
  if (rank == 0) {
    f(offset);
    return;
  }
  std::vector<int64_t> idx(rank, 0);
  const int64_t inner = shape[rank - 1], inner_stride = strides[rank - 1];
  int64_t base = offset;
  for (int64_t done = 0; done < n; done += inner) {
    for (int64_t j = 0; j < inner; ++j) f(base + j * inner_stride);
    // advance the outer index (odometer)
    for (int64_t d = rank - 2; d >= 0; --d) {
      base += strides[d];
      if (++idx[d] < shape[d]) break;
      base -= strides[d] * shape[d];
      idx[d] = 0;
    }
  }
}

static void copy_strided_to(const Tensor& src, float* dst) {
  if (src.is_contiguous()) {
    std::memcpy(dst, src.data(), sizeof(float) * src.numel());
    return;
  }
  const float* base = src.impl()->storage->data();
  int64_t k = 0;
  for_each_index(src.shape(), src.strides(), src.offset(), [&](int64_t i) { dst[k++] = base[i]; });
}

float Tensor::item() const {
  NL_CHECK(defined() && numel() == 1, "item(): needs a one-element tensor, got shape ",
           defined() ? shape() : Shape{});
  return contiguous().data()[0];
}

std::vector<float> Tensor::to_vector() const {
  std::vector<float> out(numel());
  copy_strided_to(*this, out.data());
  return out;
}

float Tensor::at(std::initializer_list<int64_t> index) const {
  NL_CHECK(static_cast<int64_t>(index.size()) == dim(), "at(): ", index.size(), " indices for shape ", shape());
  int64_t pos = offset(), d = 0;
  for (int64_t i : index) {
    NL_CHECK(i >= 0 && i < impl_->shape[d], "at(): index ", i, " out of range for dim ", d, " of shape ", shape());
    pos += i * impl_->strides[d++];
  }
  return impl_->storage->data()[pos];
}

// ---------------------------------------------------------------- autograd accessors
Tensor& Tensor::set_requires_grad(bool on) {
  NL_CHECK(is_leaf(), "set_requires_grad: only leaf tensors (not results of ops) can change requires_grad");
  impl_->requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return impl_->grad ? Tensor(impl_->grad) : Tensor(); }
void Tensor::zero_grad() { impl_->grad.reset(); }
void Tensor::set_grad(const Tensor& g) {
  NL_CHECK(!g.defined() || g.shape() == shape(), "set_grad: gradient shape ", g.shape(), " != tensor shape ", shape());
  impl_->grad = g.defined() ? g.contiguous().impl() : nullptr;
}

Tensor Tensor::detach() const { return make_tensor(impl_->storage, impl_->offset, impl_->shape, impl_->strides); }

// ---------------------------------------------------------------- views
static Tensor view_of(const Tensor& t, Shape shape, Shape strides, int64_t offset) {
  return make_tensor(t.impl()->storage, offset, std::move(shape), std::move(strides));
}

static Shape infer_shape(const Shape& requested, int64_t numel, const char* op) {
  Shape shape = requested;
  int64_t known = 1, infer_at = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      NL_CHECK(infer_at < 0, op, ": only one dimension can be -1 in ", requested);
      infer_at = static_cast<int64_t>(i);
    } else {
      NL_CHECK(shape[i] >= 0, op, ": invalid dimension in ", requested);
      known *= shape[i];
    }
  }
  if (infer_at >= 0) {
    NL_CHECK(known > 0 && numel % known == 0, op, ": cannot infer -1 in ", requested, " for ", numel, " elements");
    shape[infer_at] = numel / known;
  }
  NL_CHECK(shape_numel(shape) == numel, op, ": shape ", requested, " is invalid for ", numel, " elements");
  return shape;
}

Tensor Tensor::view(const Shape& requested) const {
  NL_CHECK(is_contiguous(), "view: input of shape ", shape(), " is not contiguous; use reshape()");
  Shape new_shape = infer_shape(requested, numel(), "view");
  Shape old_shape = shape();
  Tensor out = view_of(*this, new_shape, contiguous_strides(new_shape), offset());
  Tensor self = *this;
  return record(out, "view", {self}, [self, old_shape](const Tensor& g) {
    accumulate_grad(self, g.contiguous().view(old_shape));
  });
}

Tensor Tensor::reshape(const Shape& requested) const { return is_contiguous() ? view(requested) : contiguous().view(requested); }

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  int64_t s = wrap_dim(start_dim, dim(), "flatten"), e = wrap_dim(end_dim, dim(), "flatten");
  Shape out;
  for (int64_t i = 0; i < s; ++i) out.push_back(size(i));
  int64_t merged = 1;
  for (int64_t i = s; i <= e; ++i) merged *= size(i);
  out.push_back(merged);
  for (int64_t i = e + 1; i < dim(); ++i) out.push_back(size(i));
  return reshape(out);
}

Tensor Tensor::permute(const Shape& dims) const {
  NL_CHECK(static_cast<int64_t>(dims.size()) == dim(), "permute: ", dims, " does not match rank of shape ", shape());
  Shape new_shape(dim()), new_strides(dim()), inverse(dim());
  std::vector<bool> seen(dim(), false);
  for (int64_t i = 0; i < dim(); ++i) {
    int64_t d = wrap_dim(dims[i], dim(), "permute");
    NL_CHECK(!seen[d], "permute: repeated dim in ", dims);
    seen[d] = true;
    new_shape[i] = impl_->shape[d];
    new_strides[i] = impl_->strides[d];
    inverse[d] = i;
  }
  Tensor out = view_of(*this, new_shape, new_strides, offset());
  Tensor self = *this;
  return record(out, "permute", {self}, [self, inverse](const Tensor& g) { accumulate_grad(self, g.permute(inverse)); });
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  Shape dims(dim());
  for (int64_t i = 0; i < dim(); ++i) dims[i] = i;
  std::swap(dims[wrap_dim(d0, dim(), "transpose")], dims[wrap_dim(d1, dim(), "transpose")]);
  return permute(dims);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = wrap_dim(d, dim(), "slice");
  const int64_t len = impl_->shape[d];
  NL_CHECK(step >= 1, "slice: step must be >= 1, got ", step);
  if (start < 0) start += len;
  if (end < 0) end += len;
  start = std::clamp<int64_t>(start, 0, len);
  end = std::clamp<int64_t>(end, start, len);
  Shape new_shape = shape(), new_strides = strides();
  new_shape[d] = (end - start + step - 1) / step;
  new_strides[d] *= step;
  Tensor out = view_of(*this, new_shape, new_strides, offset() + start * impl_->strides[d]);
  Tensor self = *this;
  return record(out, "slice", {self}, [self, d, start, end, step](const Tensor& g) {
    Tensor full = Tensor::zeros(self.shape());
    full.slice(d, start, end, step).copy_(g);
    accumulate_grad(self, full);
  });
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = wrap_dim(d, dim(), "select");
  NL_CHECK(index >= -size(d) && index < size(d), "select: index ", index, " out of range for dim ", d, " of shape ", shape());
  if (index < 0) index += size(d);
  return slice(d, index, index + 1).squeeze(d);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape s = shape();
  s.insert(s.begin() + d, 1);
  return reshape(s);
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, dim(), "squeeze");
  if (size(d) != 1) return *this;
  Shape s = shape(), st = strides();
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  Tensor out = view_of(*this, s, st, offset());
  Tensor self = *this;
  return record(out, "squeeze", {self}, [self](const Tensor& g) { accumulate_grad(self, g.reshape(self.shape())); });
}

Tensor Tensor::expand(const Shape& target) const {
  NL_CHECK(static_cast<int64_t>(target.size()) >= dim(), "expand: cannot expand shape ", shape(), " to ", target);
  const int64_t lead = static_cast<int64_t>(target.size()) - dim();
  Shape new_strides(target.size(), 0);
  for (int64_t i = 0; i < static_cast<int64_t>(target.size()); ++i) {
    if (i < lead) continue;
    int64_t src = impl_->shape[i - lead];
    NL_CHECK(src == target[i] || src == 1, "expand: cannot expand shape ", shape(), " to ", target);
    new_strides[i] = src == 1 && target[i] != 1 ? 0 : impl_->strides[i - lead];
  }
  Tensor out = view_of(*this, target, new_strides, offset());
  Tensor self = *this;
  return record(out, "expand", {self}, [self](const Tensor& g) { accumulate_grad(self, sum_to(g, self.shape())); });
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::clone() const {
  Tensor out = Tensor::empty(shape());
  copy_strided_to(*this, out.data());
  Tensor self = *this;
  return record(out, "clone", {self}, [self](const Tensor& g) { accumulate_grad(self, g); });
}

// ---------------------------------------------------------------- in-place (no autograd)
Tensor& Tensor::fill_(float value) {
  float* base = impl_->storage->data();
  for_each_index(shape(), strides(), offset(), [&](int64_t i) { base[i] = value; });
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  NL_CHECK(src.numel() == numel(), "copy_: source has ", src.numel(), " elements (shape ", src.shape(),
           "), destination ", numel(), " (shape ", shape(), ")");
  if (is_contiguous() && src.is_contiguous()) {
    std::memmove(data(), src.data(), sizeof(float) * numel());
    return *this;
  }
  std::vector<float> values = src.to_vector();
  float* base = impl_->storage->data();
  int64_t k = 0;
  for_each_index(shape(), strides(), offset(), [&](int64_t i) { base[i] = values[k++]; });
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, float alpha) {
  NL_CHECK(other.shape() == shape(), "add_: shape ", other.shape(), " does not match ", shape());
  NL_CHECK(is_contiguous(), "add_: destination must be contiguous");
  Tensor o = other.contiguous();
  float* y = data();
  const float* x = o.data();
  const int64_t n = numel();
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
  return *this;
}

Tensor& Tensor::mul_(float factor) {
  float* base = impl_->storage->data();
  for_each_index(shape(), strides(), offset(), [&](int64_t i) { base[i] *= factor; });
  return *this;
}

}  // namespace nl
