// normlab core: 2-D convolution (NCHW) as im2col + sgemm, and its gradients.
//
// For one sample and one group g (Cg = Cin/groups input channels, Cog = Cout/groups outputs,
// Kg = Cg*KH*KW), im2col lays every receptive field out as a column:
//   col[(c*KH + kh)*KW + kw, oh*OW + ow] = x[c, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw]  (0 outside)
// and the convolution becomes one matrix product:
//   Y_g [Cog, OH*OW] = W_g [Cog, Kg] col [Kg, OH*OW] + b
// Backward, with G = dY for the sample:
//   dW_g += G_g col^T          (summed over the batch)
//   db   += sum over (n, oh, ow) of G
//   dcol  = W_g^T G_g, then col2im adds every column entry back onto the pixel it came from.
// A 1x1 convolution with stride 1 and no padding needs no im2col: col is x itself.
//
// Threads: the per-sample products of the MNIST/CIFAR layers are small (e.g. 64 x 288 x 196),
// too small for OpenBLAS to thread well, so the batch is split into one chunk per thread and
// each chunk runs single-threaded sgemms (OpenBLAS inside an OpenMP region does not spawn
// threads). A batch of one runs sequentially and lets OpenBLAS thread the product instead.
// dW and db are accumulated into one buffer per chunk, summed afterwards in chunk order:
// no atomics, and the same bits for the same thread count.
#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/autograd.hpp"
#include "core/kernels/kernels.hpp"
#include "core/ops.hpp"
#include "core/parallel.hpp"

namespace nl {

namespace {

struct ConvGeometry {
  int64_t n, cin, h, w;        // input
  int64_t cout, kh, kw;        // weight
  int64_t oh, ow;              // output
  int64_t groups, cg, cog, kg; // per group: input channels, output channels, col rows
  Conv2dOptions o;
  bool direct;  // 1x1, stride 1, no padding: col == x

  int64_t ohw() const { return oh * ow; }
};

// Output columns [lo, hi) whose input column ow*s - p + k*d lies inside [0, w).
void valid_range(int64_t k_offset, int64_t stride, int64_t out, int64_t in, int64_t& lo, int64_t& hi) {
  // ow*stride + k_offset >= 0  and  ow*stride + k_offset < in
  lo = k_offset >= 0 ? 0 : (-k_offset + stride - 1) / stride;
  hi = k_offset >= in ? 0 : (in - k_offset + stride - 1) / stride;
  lo = std::min(lo, out);
  hi = std::clamp(hi, lo, out);
}

// x: [Cg, H, W] of one sample and group -> col: [Kg, OH*OW].
void im2col(const float* x, float* col, const ConvGeometry& g) {
  const Conv2dOptions& o = g.o;
  for (int64_t c = 0; c < g.cg; ++c) {
    for (int64_t ki = 0; ki < g.kh; ++ki) {
      for (int64_t kj = 0; kj < g.kw; ++kj) {
        float* dst = col + ((c * g.kh + ki) * g.kw + kj) * g.ohw();
        const int64_t col_offset = kj * o.dilation_w - o.pad_w;
        int64_t lo, hi;
        valid_range(col_offset, o.stride_w, g.ow, g.w, lo, hi);
        for (int64_t y = 0; y < g.oh; ++y, dst += g.ow) {
          const int64_t iy = y * o.stride_h - o.pad_h + ki * o.dilation_h;
          if (iy < 0 || iy >= g.h) {
            std::fill(dst, dst + g.ow, 0.0f);
            continue;
          }
          const float* src = x + (c * g.h + iy) * g.w + col_offset;
          std::fill(dst, dst + lo, 0.0f);
          if (o.stride_w == 1) {
            std::memcpy(dst + lo, src + lo, (hi - lo) * sizeof(float));
          } else {
            for (int64_t xo = lo; xo < hi; ++xo) dst[xo] = src[xo * o.stride_w];
          }
          std::fill(dst + hi, dst + g.ow, 0.0f);
        }
      }
    }
  }
}

// The adjoint of im2col: dx [Cg, H, W] += every col entry at the pixel it was read from.
void col2im_add(const float* col, float* dx, const ConvGeometry& g) {
  const Conv2dOptions& o = g.o;
  for (int64_t c = 0; c < g.cg; ++c) {
    for (int64_t ki = 0; ki < g.kh; ++ki) {
      for (int64_t kj = 0; kj < g.kw; ++kj) {
        const float* src = col + ((c * g.kh + ki) * g.kw + kj) * g.ohw();
        const int64_t col_offset = kj * o.dilation_w - o.pad_w;
        int64_t lo, hi;
        valid_range(col_offset, o.stride_w, g.ow, g.w, lo, hi);
        for (int64_t y = 0; y < g.oh; ++y, src += g.ow) {
          const int64_t iy = y * o.stride_h - o.pad_h + ki * o.dilation_h;
          if (iy < 0 || iy >= g.h) continue;
          float* dst = dx + (c * g.h + iy) * g.w + col_offset;
          if (o.stride_w == 1) {
            for (int64_t xo = lo; xo < hi; ++xo) dst[xo] += src[xo];
          } else {
            for (int64_t xo = lo; xo < hi; ++xo) dst[xo * o.stride_w] += src[xo];
          }
        }
      }
    }
  }
}

// C [m, n] = A [m, k] B [k, n] + beta C, all row-major and tight, A or B optionally transposed.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, const float* b, float beta,
          float* c) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), 1.0f, a,
              static_cast<int>(trans_a ? m : k), b, static_cast<int>(trans_b ? k : n), beta, c, static_cast<int>(n));
}

// Split [0, n) samples into one chunk per thread (at most n chunks) and run
// fn(chunk, begin, end) for each, in parallel. The split depends only on n and the
// thread count, so per-chunk partial sums are reproducible.
template <typename Fn>
int64_t for_each_chunk(int64_t n, Fn&& fn) {
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(num_threads(), n));
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) fn(c, n * c / chunks, n * (c + 1) / chunks);
  });
  return chunks;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& o) {
  NL_CHECK(x.dim() == 4, "conv2d: input must be 4-D [N, C, H, W], got ", x.shape(), " (weight ", weight.shape(), ")");
  NL_CHECK(weight.dim() == 4, "conv2d: weight must be 4-D [Cout, Cin/groups, KH, KW], got ", weight.shape(),
           " (input ", x.shape(), ")");
  NL_CHECK(o.groups >= 1 && o.stride_h >= 1 && o.stride_w >= 1 && o.dilation_h >= 1 && o.dilation_w >= 1 &&
               o.pad_h >= 0 && o.pad_w >= 0,
           "conv2d: need groups, stride, dilation >= 1 and padding >= 0 (input ", x.shape(), ", weight ",
           weight.shape(), ")");
  ConvGeometry g;
  g.n = x.size(0), g.cin = x.size(1), g.h = x.size(2), g.w = x.size(3);
  g.cout = weight.size(0), g.kh = weight.size(2), g.kw = weight.size(3);
  g.groups = o.groups;
  g.o = o;
  NL_CHECK(g.cin % g.groups == 0 && g.cout % g.groups == 0 && weight.size(1) * g.groups == g.cin, "conv2d: input ",
           x.shape(), " and weight ", weight.shape(), " do not fit groups=", g.groups,
           " (need weight.size(1) * groups == input channels, and groups dividing output channels)");
  NL_CHECK(!bias.defined() || bias.shape() == Shape{g.cout}, "conv2d: bias ", bias.defined() ? bias.shape() : Shape{},
           " does not match weight ", weight.shape(), " (need [", g.cout, "])");
  const int64_t eff_kh = o.dilation_h * (g.kh - 1) + 1, eff_kw = o.dilation_w * (g.kw - 1) + 1;
  NL_CHECK(g.h + 2 * o.pad_h >= eff_kh && g.w + 2 * o.pad_w >= eff_kw, "conv2d: input ", x.shape(),
           " (padded by ", o.pad_h, ", ", o.pad_w, ") is smaller than the dilated kernel of weight ", weight.shape());
  g.oh = (g.h + 2 * o.pad_h - eff_kh) / o.stride_h + 1;
  g.ow = (g.w + 2 * o.pad_w - eff_kw) / o.stride_w + 1;
  g.cg = g.cin / g.groups, g.cog = g.cout / g.groups, g.kg = g.cg * g.kh * g.kw;
  g.direct = g.kh == 1 && g.kw == 1 && o.stride_h == 1 && o.stride_w == 1 && o.pad_h == 0 && o.pad_w == 0;

  Tensor xc = x.detach().contiguous(), wc = weight.detach().contiguous();
  Tensor bc = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = Tensor::empty({g.n, g.cout, g.oh, g.ow});
  const int64_t x_sample = g.cin * g.h * g.w, y_sample = g.cout * g.ohw();

  for_each_chunk(g.n, [&](int64_t, int64_t begin, int64_t end) {
    std::vector<float> col(g.direct ? 0 : g.kg * g.ohw());
    for (int64_t s = begin; s < end; ++s) {
      float* ys = y.data() + s * y_sample;
      // Start from the bias and let sgemm add W col (beta = 1), or overwrite (beta = 0).
      if (bc.defined()) {
        for (int64_t c = 0; c < g.cout; ++c) std::fill(ys + c * g.ohw(), ys + (c + 1) * g.ohw(), bc.data()[c]);
      }
      for (int64_t gi = 0; gi < g.groups; ++gi) {
        const float* xs = xc.data() + s * x_sample + gi * g.cg * g.h * g.w;
        if (!g.direct) im2col(xs, col.data(), g);
        gemm(false, false, g.cog, g.ohw(), g.kg, wc.data() + gi * g.cog * g.kg, g.direct ? xs : col.data(),
             bc.defined() ? 1.0f : 0.0f, ys + gi * g.cog * g.ohw());
      }
    }
  });

  return record(y, "conv2d", {x, weight, bias}, [x, weight, bias, xc, wc, g](const Tensor& gy_in) {
    Tensor gy = gy_in.contiguous();
    const bool need_x = x.requires_grad(), need_w = weight.requires_grad();
    const bool need_b = bias.defined() && bias.requires_grad();
    const int64_t x_sample = g.cin * g.h * g.w, y_sample = g.cout * g.ohw();
    const int64_t w_numel = g.cout * g.kg;
    Tensor dx = need_x ? Tensor::zeros(x.shape()) : Tensor();
    // One dW/db partial per chunk (zeroed; each sample adds into its chunk's partial).
    const int64_t max_chunks = std::max<int64_t>(1, std::min<int64_t>(num_threads(), g.n));
    std::vector<float> dw_part(need_w ? max_chunks * w_numel : 0, 0.0f);
    std::vector<float> db_part(need_b ? max_chunks * g.cout : 0, 0.0f);

    const int64_t chunks = for_each_chunk(g.n, [&](int64_t chunk, int64_t begin, int64_t end) {
      std::vector<float> col(g.direct ? 0 : g.kg * g.ohw());
      float* dw = need_w ? dw_part.data() + chunk * w_numel : nullptr;
      float* db = need_b ? db_part.data() + chunk * g.cout : nullptr;
      for (int64_t s = begin; s < end; ++s) {
        const float* gys = gy.data() + s * y_sample;
        if (need_b) {
          for (int64_t c = 0; c < g.cout; ++c) db[c] += static_cast<float>(kernels().sum(gys + c * g.ohw(), g.ohw()));
        }
        for (int64_t gi = 0; gi < g.groups; ++gi) {
          const float* gyg = gys + gi * g.cog * g.ohw();
          const float* wg = wc.data() + gi * g.cog * g.kg;
          if (need_w) {  // dW_g += G_g col^T
            const float* xs = xc.data() + s * x_sample + gi * g.cg * g.h * g.w;
            if (!g.direct) im2col(xs, col.data(), g);
            gemm(false, true, g.cog, g.kg, g.ohw(), gyg, g.direct ? xs : col.data(), 1.0f, dw + gi * g.cog * g.kg);
          }
          if (need_x) {  // dcol = W_g^T G_g, scattered back by col2im
            float* dxs = dx.data() + s * x_sample + gi * g.cg * g.h * g.w;
            if (g.direct) {
              gemm(true, false, g.kg, g.ohw(), g.cog, wg, gyg, 0.0f, dxs);
            } else {
              gemm(true, false, g.kg, g.ohw(), g.cog, wg, gyg, 0.0f, col.data());
              col2im_add(col.data(), dxs, g);
            }
          }
        }
      }
    });

    if (need_x) accumulate_grad(x, dx);
    // Sum the chunk partials in chunk order (deterministic).
    if (need_w) {
      Tensor dw = Tensor::empty(weight.shape());
      std::copy(dw_part.begin(), dw_part.begin() + w_numel, dw.data());
      for (int64_t c = 1; c < chunks; ++c)
        for (int64_t i = 0; i < w_numel; ++i) dw.data()[i] += dw_part[c * w_numel + i];
      accumulate_grad(weight, dw);
    }
    if (need_b) {
      Tensor db = Tensor::empty(bias.shape());
      std::copy(db_part.begin(), db_part.begin() + g.cout, db.data());
      for (int64_t c = 1; c < chunks; ++c)
        for (int64_t i = 0; i < g.cout; ++i) db.data()[i] += db_part[c * g.cout + i];
      accumulate_grad(bias, db);
    }
  });
}

}  // namespace nl
