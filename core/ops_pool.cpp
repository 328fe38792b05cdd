// normlab core: 2-D pooling (NCHW) and its gradients.
//
// A k x k window with stride s and zero padding p slides over every [H, W] plane:
//   OH = floor((H + 2p - k) / s) + 1   (likewise OW; PyTorch's ceil_mode=False)
//   max_pool2d:  y[oh, ow] = max of x over the window (padding never wins);
//                dx[argmax] += dy  (the argmax is saved as an int index into the plane)
//   avg_pool2d:  y[oh, ow] = sum of x over the window / (k*k)
//                (count_include_pad=True, PyTorch's default: padded zeros count in the mean);
//                dx[i] += dy / (k*k) for every real pixel i of the window
//   global_avg_pool2d:  y[n, c] = mean over H, W;  dx = dy / (H*W) everywhere
// Planes are independent, so all three are parallel over N*C planes with no write conflicts.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "core/autograd.hpp"
#include "core/kernels/pool.hpp"
#include "core/ops.hpp"
#include "core/parallel.hpp"

namespace nl {

NL_SIMD_TABLES(PoolKernels, pool_table)

const PoolKernels& pool_kernels_for(SimdLevel level) {
  return for_simd_level(level, simd_scalar::pool_table, simd_avx2::pool_table, simd_avx512::pool_table);
}
const PoolKernels& pool_kernels() { return pool_kernels_for(simd_level()); }

namespace {

struct PoolGeometry {
  int64_t planes, h, w, oh, ow, k, s, p;
};

// At least this many planes per thread: pooling is cheap per element.
constexpr int64_t kPlaneGrain = 4;

PoolGeometry pool_geometry(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding, const char* op) {
  NL_CHECK(x.dim() == 4, op, ": input must be 4-D [N, C, H, W], got ", x.shape());
  if (stride == 0) stride = kernel;
  NL_CHECK(kernel >= 1 && stride >= 1 && padding >= 0, op, ": need kernel >= 1, stride >= 1, padding >= 0, got kernel=",
           kernel, " stride=", stride, " padding=", padding, " for input ", x.shape());
  NL_CHECK(2 * padding <= kernel, op, ": padding ", padding, " must be at most half the kernel ", kernel,
           " (as in PyTorch), input ", x.shape());
  PoolGeometry g{x.size(0) * x.size(1), x.size(2), x.size(3), 0, 0, kernel, stride, padding};
  NL_CHECK(g.h + 2 * padding >= kernel && g.w + 2 * padding >= kernel, op, ": input ", x.shape(),
           " padded by ", padding, " is smaller than the kernel ", kernel);
  g.oh = (g.h + 2 * padding - kernel) / stride + 1;
  g.ow = (g.w + 2 * padding - kernel) / stride + 1;
  return g;
}

Shape pooled_shape(const Tensor& x, const PoolGeometry& g) { return {x.size(0), x.size(1), g.oh, g.ow}; }

// The 2x2, stride 2, unpadded max pool of every CNN here has its own kernels
// (core/kernels/pool.hpp): the generic window loop (bounds per window, a data-dependent branch
// per pixel) took a fifth of a CNN training step. Its backward writes every input pixel once
// (the windows tile the plane), so dx needs no zeroing pass and no scatter.
bool is_2x2_stride2(const PoolGeometry& g) { return g.k == 2 && g.s == 2 && g.p == 0; }

}  // namespace

Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  const PoolGeometry g = pool_geometry(x, kernel, stride, padding, "max_pool2d");
  Tensor xc = x.detach().contiguous();
  Tensor y = Tensor::empty(pooled_shape(x, g));
  auto argmax = std::make_shared<std::vector<int32_t>>(y.numel());
  const float* px = xc.data();
  float* py = y.data();
  int32_t* pi = argmax->data();
  parallel_for(g.planes, kPlaneGrain, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const float* xp = px + plane * g.h * g.w;
      float* yp = py + plane * g.oh * g.ow;
      int32_t* ip = pi + plane * g.oh * g.ow;
      if (is_2x2_stride2(g)) {
        pool_kernels().max_pool_2x2(xp, g.h, g.w, yp, ip);
        continue;
      }
      for (int64_t oy = 0; oy < g.oh; ++oy) {
        const int64_t y0 = std::max<int64_t>(oy * g.s - g.p, 0), y1 = std::min(oy * g.s - g.p + g.k, g.h);
        for (int64_t ox = 0; ox < g.ow; ++ox) {
          const int64_t x0 = std::max<int64_t>(ox * g.s - g.p, 0), x1 = std::min(ox * g.s - g.p + g.k, g.w);
          float best = -std::numeric_limits<float>::infinity();
          int64_t best_i = y0 * g.w + x0;
          for (int64_t iy = y0; iy < y1; ++iy) {
            for (int64_t ix = x0; ix < x1; ++ix) {
              const float v = xp[iy * g.w + ix];
              // Strictly greater keeps the first maximum; a NaN wins, as in PyTorch.
              if (v > best || std::isnan(v)) {
                best = v;
                best_i = iy * g.w + ix;
              }
            }
          }
          yp[oy * g.ow + ox] = best;
          ip[oy * g.ow + ox] = static_cast<int32_t>(best_i);
        }
      }
    }
  });
  return record(y, "max_pool2d", {x}, [x, g, argmax](const Tensor& gy_in) {
    Tensor gy = gy_in.contiguous();
    const bool fast = is_2x2_stride2(g);
    Tensor dx = fast ? Tensor::empty(x.shape()) : Tensor::zeros(x.shape());
    const float* pg = gy.data();
    const int32_t* pi = argmax->data();
    float* pd = dx.data();
    const int64_t out_plane = g.oh * g.ow, in_plane = g.h * g.w;
    parallel_for(g.planes, kPlaneGrain, [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        float* dp = pd + plane * in_plane;
        if (fast) {
          pool_kernels().max_pool_2x2_backward(pg + plane * out_plane, pi + plane * out_plane, g.h, g.w, dp);
          continue;
        }
        for (int64_t i = plane * out_plane; i < (plane + 1) * out_plane; ++i) dp[pi[i]] += pg[i];
      }
    });
    accumulate_grad(x, dx);
  });
}

Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  const PoolGeometry g = pool_geometry(x, kernel, stride, padding, "avg_pool2d");
  Tensor xc = x.detach().contiguous();
  Tensor y = Tensor::empty(pooled_shape(x, g));
  // With ceil_mode=False every window lies inside the padded plane, so the divisor is k*k.
  const float inv_area = 1.0f / static_cast<float>(g.k * g.k);
  const float* px = xc.data();
  float* py = y.data();
  parallel_for(g.planes, kPlaneGrain, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const float* xp = px + plane * g.h * g.w;
      float* yp = py + plane * g.oh * g.ow;
      for (int64_t oy = 0; oy < g.oh; ++oy) {
        const int64_t y0 = std::max<int64_t>(oy * g.s - g.p, 0), y1 = std::min(oy * g.s - g.p + g.k, g.h);
        for (int64_t ox = 0; ox < g.ow; ++ox) {
          const int64_t x0 = std::max<int64_t>(ox * g.s - g.p, 0), x1 = std::min(ox * g.s - g.p + g.k, g.w);
          float acc = 0.0f;
          for (int64_t iy = y0; iy < y1; ++iy)
            for (int64_t ix = x0; ix < x1; ++ix) acc += xp[iy * g.w + ix];
          yp[oy * g.ow + ox] = acc * inv_area;
        }
      }
    }
  });
  return record(y, "avg_pool2d", {x}, [x, g, inv_area](const Tensor& gy_in) {
    Tensor gy = gy_in.contiguous();
    Tensor dx = Tensor::zeros(x.shape());
    const float* pg = gy.data();
    float* pd = dx.data();
    parallel_for(g.planes, kPlaneGrain, [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        float* dp = pd + plane * g.h * g.w;
        const float* gp = pg + plane * g.oh * g.ow;
        for (int64_t oy = 0; oy < g.oh; ++oy) {
          const int64_t y0 = std::max<int64_t>(oy * g.s - g.p, 0), y1 = std::min(oy * g.s - g.p + g.k, g.h);
          for (int64_t ox = 0; ox < g.ow; ++ox) {
            const int64_t x0 = std::max<int64_t>(ox * g.s - g.p, 0), x1 = std::min(ox * g.s - g.p + g.k, g.w);
            const float share = gp[oy * g.ow + ox] * inv_area;
            for (int64_t iy = y0; iy < y1; ++iy)
              for (int64_t ix = x0; ix < x1; ++ix) dp[iy * g.w + ix] += share;
          }
        }
      }
    });
    accumulate_grad(x, dx);
  });
}

Tensor global_avg_pool2d(const Tensor& x) {
  NL_CHECK(x.dim() == 4, "global_avg_pool2d: input must be 4-D [N, C, H, W], got ", x.shape());
  const int64_t planes = x.size(0) * x.size(1), area = x.size(2) * x.size(3);
  NL_CHECK(area > 0, "global_avg_pool2d: empty planes in input ", x.shape());
  Tensor xc = x.detach().contiguous();
  Tensor y = Tensor::empty({x.size(0), x.size(1)});
  const float* px = xc.data();
  float* py = y.data();
  parallel_for(planes, kPlaneGrain, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const float* xp = px + plane * area;
      float acc = 0.0f;
      for (int64_t i = 0; i < area; ++i) acc += xp[i];
      py[plane] = acc / static_cast<float>(area);
    }
  });
  return record(y, "global_avg_pool2d", {x}, [x, planes, area](const Tensor& gy_in) {
    Tensor gy = gy_in.contiguous();
    Tensor dx = Tensor::empty(x.shape());
    const float* pg = gy.data();
    float* pd = dx.data();
    const float inv_area = 1.0f / static_cast<float>(area);
    parallel_for(planes, kPlaneGrain, [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane)
        std::fill(pd + plane * area, pd + (plane + 1) * area, pg[plane] * inv_area);
    });
    accumulate_grad(x, dx);
  });
}

}  // namespace nl
