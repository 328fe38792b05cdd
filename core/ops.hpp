// normlab core: differentiable operations on tensors. Each has a forward and a backward
// (recorded with autograd.hpp's record()), a gradient check and a PyTorch fixture test.
// Semantics follow PyTorch's functions of the same name unless a comment says otherwise.
#pragma once

#include <cstdint>
#include <vector>

#include "core/random.hpp"
#include "core/tensor.hpp"

namespace nl {

// ---- elementwise, binary with NumPy/PyTorch broadcasting (core/ops_elementwise.cpp) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, float b);
Tensor mul(const Tensor& a, float b);
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Sum g over broadcast dims so it has `shape` (the backward of broadcasting).
Tensor sum_to(const Tensor& g, const Shape& shape);

// ---- elementwise, unary ----
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor pow(const Tensor& x, float exponent);
Tensor abs(const Tensor& x);
Tensor clamp(const Tensor& x, float lo, float hi);
Tensor relu(const Tensor& x);
// relu(a + b) for same-shape a and b in one pass (a residual block's output): the same values
// and gradients as the two ops, without the sum's tensor. d/da = d/db = [out > 0].
Tensor add_relu(const Tensor& a, const Tensor& b);
Tensor leaky_relu(const Tensor& x, float negative_slope = 0.01f);
Tensor gelu(const Tensor& x);  // exact erf form, PyTorch's default
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, float b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, float b) { return add(a, -b); }
inline Tensor operator*(const Tensor& a, float b) { return mul(a, b); }
inline Tensor operator*(float a, const Tensor& b) { return mul(b, a); }
inline Tensor operator-(const Tensor& a) { return neg(a); }

// ---- reductions (core/ops_reduce.cpp); empty dims = all dims ----
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, bool unbiased = true,
           bool keepdim = false);
Tensor max(const Tensor& x, int64_t dim, bool keepdim = false);  // values; grad to the first argmax
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

// ---- shape ops ----
Tensor concat(const std::vector<Tensor>& tensors, int64_t dim);

// ---- linear algebra (core/ops_matmul.cpp, OpenBLAS sgemm) ----
// 2-D x 2-D, or batched: [..., M, K] x [..., K, N] with equal (or broadcast 1-D/2-D) batch dims.
Tensor matmul(const Tensor& a, const Tensor& b);
// y = x W^T + b, x: [..., in], weight: [out, in], bias: [out] or undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
// Raw row-major C[m, n] = op(A) op(B) + beta C on float buffers (no autograd), for fused
// layers that manage their own buffers; threads chosen by size (small products run on one).
void gemm_raw(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
              const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// ---- convolution and pooling (core/ops_conv.cpp, core/ops_pool.cpp), NCHW ----
struct Conv2dOptions {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
};
// x: [N, Cin, H, W], weight: [Cout, Cin/groups, KH, KW], bias: [Cout] or undefined.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
              const Conv2dOptions& options = {});
// How 3x3 stride-1 convolutions (and their input gradients) are computed: `automatic` takes
// Winograd F(2x2, 3x3) for the shapes where it measured faster, else the direct kernel; the
// others force one, for tests and benchmarks (Winograd needs even H and W).
enum class Conv3x3Algorithm { automatic, direct, winograd };
void set_conv3x3_algorithm(Conv3x3Algorithm algorithm);
Conv3x3Algorithm conv3x3_algorithm();
Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride = 0, int64_t padding = 0);
Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride = 0, int64_t padding = 0);
Tensor global_avg_pool2d(const Tensor& x);  // [N, C, H, W] -> [N, C]

// ---- embedding, dropout, losses (core/ops_nn.cpp) ----
// weight: [num, dim]; ids: any shape given by ids_shape, values in [0, num). -> ids_shape + [dim]
Tensor embedding(const Tensor& weight, const std::vector<int32_t>& ids, const Shape& ids_shape);
// Inverted dropout: zeroes with probability p and scales survivors by 1/(1-p) in training.
Tensor dropout(const Tensor& x, float p, bool training, Generator& gen);
// logits: [N, C] (or [N, C, d...] is not supported; flatten first); targets: N class ids.
// Mean over targets != ignore_index. label_smoothing as in PyTorch.
Tensor cross_entropy(const Tensor& logits, const std::vector<int32_t>& targets,
                     int32_t ignore_index = -100, float label_smoothing = 0.0f);
Tensor mse_loss(const Tensor& prediction, const Tensor& target);  // mean

}  // namespace nl
