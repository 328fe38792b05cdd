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
// threads). A batch of one runs sequentially and lets gemm_raw split the product across threads.
// dW and db are accumulated into one buffer per chunk, summed afterwards in chunk order:
// no atomics, and the same bits for the same thread count.
//
// Direct path: 3x3, stride 1, padding 1, no dilation, one group -- every conv of the
// reference CNNs. There im2col is the bottleneck, not the product: it copies each input 9
// times, and the per-sample products are thin (K = 9 or 27 rows for the image layers), which
// sgemm runs far below peak. The direct kernels (core/kernels/conv3x3.hpp) read a
// zero-bordered copy of the input and keep a block of outputs in registers instead:
//   forward  y  = conv(x_pad, W) + b                       work items (sample, block of Cout)
//   input    dx = conv(dy_pad, W flipped, Cin <-> Cout)    work items (sample, block of Cin)
//   weight   dW[co, ci] = sum_n sum_q dy[n, q, co] x_pad[n, ci, q + tap]  work items (block of Cout, ci)
// Each item owns its outputs and sums in a fixed order, so the result is the same for any
// thread count, and there are no per-thread partials to merge.
// Forward and input gradient take Winograd F(2x2, 3x3) instead where it is faster (use_winograd):
// 2.25x fewer multiplies for two cheap transforms, on layers with enough channels.

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <vector>

#include "core/autograd.hpp"
#include "core/kernels/conv3x3.hpp"
#include "core/kernels/kernels.hpp"
#include "core/ops.hpp"
#include "core/parallel.hpp"

namespace nl {

NL_SIMD_TABLES(Conv3x3Kernels, conv3x3_table)

const Conv3x3Kernels& conv3x3_kernels_for(SimdLevel level) {
  return for_simd_level(level, simd_scalar::conv3x3_table, simd_avx2::conv3x3_table, simd_avx512::conv3x3_table);
}

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

// A row of im2col at column stride S, dst[xo] = src[xo * S] for xo in [lo, hi), and of its
// adjoint, dst[xo * S] += src[xo]. S = 0: the stride is the run-time `stride`. At a run-time
// stride the compiler leaves these loops scalar; at S = 2 (ResNet-20's downsampling convs) it
// vectorizes them: im2col + col2im went from 6.2% of a ResNet-20 step to 4.1% (profile, b32).
template <int S>
void gather_row(const float* __restrict src, float* __restrict dst, int64_t lo, int64_t hi, int64_t stride) {
  const int64_t s = S > 0 ? S : stride;
  for (int64_t xo = lo; xo < hi; ++xo) dst[xo] = src[xo * s];
}
template <int S>
void scatter_add_row(const float* __restrict src, float* __restrict dst, int64_t lo, int64_t hi, int64_t stride) {
  const int64_t s = S > 0 ? S : stride;
  for (int64_t xo = lo; xo < hi; ++xo) dst[xo * s] += src[xo];
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
          if (o.stride_w == 1) std::memcpy(dst + lo, src + lo, (hi - lo) * sizeof(float));
          else if (o.stride_w == 2) gather_row<2>(src, dst, lo, hi, 2);
          else gather_row<0>(src, dst, lo, hi, o.stride_w);
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
          if (o.stride_w == 1) scatter_add_row<1>(src, dst, lo, hi, 1);
          else if (o.stride_w == 2) scatter_add_row<2>(src, dst, lo, hi, 2);
          else scatter_add_row<0>(src, dst, lo, hi, o.stride_w);
        }
      }
    }
  }
}

// C [m, n] = A [m, k] B [k, n] + beta C, all row-major and tight, A or B optionally transposed
// (through gemm_raw, so a product of few output channels takes the few-row kernel).
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, const float* b, float beta,
          float* c) {
  gemm_raw(trans_a, trans_b, m, n, k, a, trans_a ? m : k, b, trans_b ? k : n, beta, c, n);
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


// ---- direct 3x3 path (see the header comment and core/kernels/conv3x3.hpp) ----

struct Plane3x3 {
  int64_t wp;       // padded row width W + 2
  int64_t q_count;  // output positions computed per plane: H * wp rounded up to whole vectors
  int64_t plane;    // floats per padded plane: room for every tap read of every computed position
};

Plane3x3 plane3x3(int64_t h, int64_t w, const Conv3x3Kernels& k) {
  Plane3x3 p;
  p.wp = w + 2;
  p.q_count = (h * p.wp + k.vec - 1) / k.vec * k.vec;
  p.plane = std::max((h + 2) * p.wp, p.q_count + 2 * p.wp + 2);
  p.plane = std::max(p.plane, h * p.wp + w + k.vec + 1);  // pad_plane's stores of the last row
  return p;
}

// src [planes, H, W] -> dst [planes, plane] by k.pad_plane: pixel (i, j) at (i + 1) * wp + j + 1,
// zero elsewhere. sums: if given, sums[i] = the sum of plane i, taken while it is in cache (the
// bias gradient).
void pad_planes(const float* src, float* dst, int64_t planes, int64_t h, int64_t w, const Plane3x3& p,
                const Conv3x3Kernels& k, double* sums = nullptr) {
  parallel_for(planes, 8, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      k.pad_plane(src + i * h * w, h, w, p.plane, dst + i * p.plane);
      if (sums) sums[i] = kernels().sum(src + i * h * w, h * w);
    }
  });
}

// One call of the forward kernel per (sample, block of `co_block` outputs), written into
// out [n, cout, h, w] (plus bias[co] when given). wpk: weights packed by pack_3x3.
void direct_3x3(const float* in_pad, int64_t n, int64_t cin, int64_t cout, int64_t h, int64_t w, const Plane3x3& p,
                const float* wpk, const float* bias, float* out, const Conv3x3Kernels& k) {
  const int64_t blocks = (cout + k.co_block - 1) / k.co_block;
  parallel_for(n * blocks, 1, [&](int64_t b, int64_t e) {
    Tensor scratch = Tensor::empty({k.co_block * p.q_count});
    float* tmp = scratch.data();
    for (int64_t item = b; item < e; ++item) {
      const int64_t s = item / blocks, co0 = item % blocks * k.co_block;
      k.forward(in_pad + s * cin * p.plane, cin, p.plane, p.wp, wpk + co0 * cin * 9, tmp, p.q_count);
      for (int64_t c = 0; c < std::min<int64_t>(k.co_block, cout - co0); ++c) {
        const float add = bias ? bias[co0 + c] : 0.0f;
        float* o = out + ((s * cout) + co0 + c) * h * w;
        for (int64_t r = 0; r < h; ++r)
          for (int64_t j = 0; j < w; ++j) o[r * w + j] = tmp[c * p.q_count + r * p.wp + j] + add;
      }
    }
  });
}

// w [cout, cin, 3, 3] -> wpk [ceil(cout / cb)][cin][9][cb] (zero rows past cout), the order the
// forward kernel reads. flip = the input gradient's weights: roles of cin and cout swapped and
// the taps reversed, wpk[.., co, t, ci] = w[co, ci, 8 - t].
std::vector<float> pack_3x3(const float* w, int64_t cout, int64_t cin, int64_t cb, bool flip) {
  const int64_t outs = flip ? cin : cout, ins = flip ? cout : cin;
  const int64_t blocks = (outs + cb - 1) / cb;
  std::vector<float> pk(blocks * cb * ins * 9, 0.0f);
  for (int64_t o = 0; o < outs; ++o)
    for (int64_t i = 0; i < ins; ++i)
      for (int64_t t = 0; t < 9; ++t) {
        const float v = flip ? w[(i * cin + o) * 9 + 8 - t] : w[(o * cin + i) * 9 + t];
        pk[((o / cb * ins + i) * 9 + t) * cb + o % cb] = v;
      }
  return pk;
}

// ---- Winograd F(2x2, 3x3) (core/kernels/conv3x3.hpp) ----

std::atomic<Conv3x3Algorithm> g_conv3x3_algorithm{Conv3x3Algorithm::automatic};

// The 2 x 2 output tiles of a batch (even h and w).
int64_t winograd_tiles(const ConvGeometry& g) { return g.n * (g.h / 2) * (g.w / 2); }

// Whether a 3x3 product with `ins` input channels over the batch's n maps of h x w takes
// Winograd. Automatic: where it measured faster than the direct kernel (`normlab_bench conv`,
// docs/performance.md) on both CPUs measured (Zen 4, Sapphire Rapids): 16 or more input
// channels (not the image layers, 1 or 3 channels: too few products per tile to pay for the
// transforms) and 64 or more tiles in the batch (below, 8x8 maps at batch 2, the transforms'
// fixed costs win: 0.76x on Sapphire Rapids, 1.0x on Zen 4).
bool use_winograd(int64_t ins, const ConvGeometry& g) {
  if (g.h % 2 != 0 || g.w % 2 != 0) return false;
  switch (g_conv3x3_algorithm.load()) {
    case Conv3x3Algorithm::direct: return false;
    case Conv3x3Algorithm::winograd: return true;
    case Conv3x3Algorithm::automatic: break;
  }
  return ins >= 16 && winograd_tiles(g) >= 64;
}

// The weight gradient's products sum over the batch's tiles: below 128 of them its 16 small
// sgemms cost more than the direct kernel saves.
bool use_winograd_weight_grad(const ConvGeometry& g) {
  if (!use_winograd(g.cin, g)) return false;
  return g_conv3x3_algorithm.load() == Conv3x3Algorithm::winograd || winograd_tiles(g) >= 128;
}

// w [cout, cin, 3, 3] -> u [ceil(outs / cb)][16][ins][cb] = G g G^T per (out, in) pair, zero past
// outs; flip = the input gradient's (in and out swapped, taps reversed, as in pack_3x3). This
// runs every step on up to 64 x 128 pairs, so it is written for speed: few operations per pair
// (G's rows 1 and 2 share g0 + g2), u written in order, a block of cb pairs at a time, and
// split across threads (at batch 2 a serial pack left the second thread waiting).
std::vector<float> pack_winograd(const float* w, int64_t cout, int64_t cin, int64_t cb, bool flip) {
  const int64_t outs = flip ? cin : cout, ins = flip ? cout : cin;
  const int64_t blocks = (outs + cb - 1) / cb;
  std::vector<float> u(blocks * 16 * ins * cb);
  parallel_for(blocks * ins, 64, [&](int64_t begin, int64_t end) {
    std::vector<float> block_u(16 * cb);  // [xi][c] of one (block, input) pair
    for (int64_t item = begin; item < end; ++item) {
      const int64_t ob = item / ins, i = item % ins;
      for (int64_t c = 0; c < cb; ++c) {
        const int64_t o = ob * cb + c;
        if (o >= outs) {
          for (int xi = 0; xi < 16; ++xi) block_u[xi * cb + c] = 0.0f;
          continue;
        }
        float g[9];
        for (int t = 0; t < 9; ++t) g[t] = flip ? w[(i * cin + o) * 9 + 8 - t] : w[(o * cin + i) * 9 + t];
        float gg[4][3];  // G g: rows 0 and 3 are g's, rows 1 and 2 (g0 + g2 +- g1) / 2
        for (int col = 0; col < 3; ++col) {
          const float outer = g[col] + g[6 + col];
          gg[0][col] = g[col], gg[1][col] = 0.5f * (outer + g[3 + col]);
          gg[2][col] = 0.5f * (outer - g[3 + col]), gg[3][col] = g[6 + col];
        }
        for (int r = 0; r < 4; ++r) {  // (G g) G^T: the same combination along the row
          const float outer = gg[r][0] + gg[r][2];
          float* ur = block_u.data() + r * 4 * cb + c;
          ur[0] = gg[r][0], ur[cb] = 0.5f * (outer + gg[r][1]), ur[2 * cb] = 0.5f * (outer - gg[r][1]);
          ur[3 * cb] = gg[r][2];
        }
      }
      for (int xi = 0; xi < 16; ++xi)
        std::memcpy(u.data() + ((ob * 16 + xi) * ins + i) * cb, block_u.data() + xi * cb, cb * sizeof(float));
    }
  });
  return u;
}

// out [n, outs, h, w] = Winograd conv of in [n, ins, h, w] (+ bias). Work items are blocks
// of whole tile rows, sized so that a block's V (16 x ins x tiles floats, ~256 KB) stays in L2,
// and at most an even share per thread; the bits do not depend on the blocking (each tile's
// sums run in the same order wherever it sits).
void winograd_3x3(const float* in, int64_t n, int64_t ins, int64_t outs, int64_t h, int64_t w, const float* u,
                  const float* bias, float* out, const Conv3x3Kernels& k) {
  const int64_t th = h / 2, tw = w / 2, tile_rows = n * th;
  const int64_t per_thread = (tile_rows + num_threads() - 1) / num_threads();
  const int64_t block = std::clamp<int64_t>(4096 / ins / tw, 1, per_thread);
  const int64_t blocks = (tile_rows + block - 1) / block;
  parallel_for(blocks, 1, [&](int64_t b, int64_t e) {
    // Not zeroed per call (a memset of it cost 2-5% of a ResNet-20 step at batch 2): see winograd().
    // A Tensor, as every scratch the kernels read and write in whole vectors: its storage starts
    // on a cache line, so no vector access splits across two (with new[]'s 16-byte alignment
    // the forward of ResNet-20's first layer took 1.3-2x as long in most runs of normlab_bench conv).
    Tensor scratch = Tensor::empty({k.winograd_scratch(ins, block * tw)});
    for (int64_t i = b; i < e; ++i) {
      const int64_t row0 = i * block;
      k.winograd(in, ins, th, tw, u, outs, bias, out, row0, std::min(block, tile_rows - row0), scratch.data());
    }
  });
}

// dw [cout, cin, 3, 3] = the weight gradient by Winograd (conv3x3.hpp): per block of tile rows,
// the transforms V of x and Z of dy (one work item per channel), then per xi the product
// dU[xi] += Z[xi] V[xi]^T (sgemm, one work item per xi, blocks in order: the same bits for any
// thread count), and at the end dW = G^T dU G per (co, ci).
void winograd_weight_grad(const float* x, const float* dy, const ConvGeometry& g, const Conv3x3Kernels& k,
                          float* dw) {
  const int64_t th = g.h / 2, tw = g.w / 2, tile_rows = g.n * th, pairs = g.cout * g.cin, hw = g.h * g.w;
  // About 2 MB of V and Z per block: each xi's slice, which one product reads, stays in L2.
  const int64_t block = std::clamp<int64_t>(32768 / (g.cin + g.cout) / tw, 1, tile_rows);
  const int64_t tps = winograd_tile_stride(block * tw, k.vec);
  const int64_t v_xi = winograd_xi_stride(g.cin, tps), z_xi = winograd_xi_stride(g.cout, tps);
  Tensor v = Tensor::empty({16 * v_xi}), z = Tensor::empty({16 * z_xi});
  Tensor du_xi = Tensor::zeros({16, pairs});  // [xi][co][ci]
  float* du = du_xi.data();
  for (int64_t row0 = 0; row0 < tile_rows; row0 += block) {
    const int64_t rows = std::min(block, tile_rows - row0);
    parallel_for(g.cin + g.cout, 1, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) {
        if (c < g.cin)
          k.winograd_input(x + c * hw, g.cin * hw, th, tw, row0, rows, v.data() + c * tps, v_xi);
        else
          k.winograd_output_grad(dy + (c - g.cin) * hw, g.cout * hw, th, tw, row0, rows, z.data() + (c - g.cin) * tps,
                                 z_xi);
      }
    });
    parallel_for(16, 1, [&](int64_t b, int64_t e) {
      for (int64_t xi = b; xi < e; ++xi)
        gemm_raw(false, true, g.cout, g.cin, rows * tw, z.data() + xi * z_xi, tps, v.data() + xi * v_xi, tps, 1.0f,
                 du + xi * pairs, g.cin);
    });
  }
  parallel_for(pairs, 256, [&](int64_t begin, int64_t end) {
    for (int64_t pair = begin; pair < end; ++pair) {  // dW = G^T dU G
      float gu[3][4];                                 // G^T dU: rows a = dU0 + (dU1 + dU2) / 2, (dU1 - dU2) / 2, ...
      for (int c = 0; c < 4; ++c) {
        const float u0 = du[c * pairs + pair], u1 = du[(4 + c) * pairs + pair];
        const float u2 = du[(8 + c) * pairs + pair], u3 = du[(12 + c) * pairs + pair];
        gu[0][c] = u0 + 0.5f * (u1 + u2), gu[1][c] = 0.5f * (u1 - u2), gu[2][c] = 0.5f * (u1 + u2) + u3;
      }
      float* out = dw + pair * 9;
      for (int a = 0; a < 3; ++a) {  // (G^T dU) G: the same combination along the row
        out[a * 3 + 0] = gu[a][0] + 0.5f * (gu[a][1] + gu[a][2]);
        out[a * 3 + 1] = 0.5f * (gu[a][1] - gu[a][2]);
        out[a * 3 + 2] = 0.5f * (gu[a][1] + gu[a][2]) + gu[a][3];
      }
    }
  });
}

// The direct path of conv2d (3x3, stride 1, padding 1, dilation 1, groups 1).
Tensor conv2d_3x3(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvGeometry& g) {
  const Conv3x3Kernels& k = conv3x3_kernels();
  const Plane3x3 p = plane3x3(g.h, g.w, k);
  Tensor xc = x.detach().contiguous(), wc = weight.detach().contiguous();
  Tensor bc = bias.defined() ? bias.detach().contiguous() : Tensor();
  // The direct kernels read a zero-bordered copy of the input (kept for the weight gradient);
  // Winograd's transforms make the border as they load the unpadded input.
  Tensor x_pad;
  Tensor y = Tensor::empty({g.n, g.cout, g.h, g.w});
  const float* b = bc.defined() ? bc.data() : nullptr;
  if (use_winograd(g.cin, g)) {
    const std::vector<float> u = pack_winograd(wc.data(), g.cout, g.cin, k.co_block, false);
    winograd_3x3(xc.data(), g.n, g.cin, g.cout, g.h, g.w, u.data(), b, y.data(), k);
  } else {
    x_pad = Tensor::empty({g.n, g.cin, p.plane});
    pad_planes(xc.data(), x_pad.data(), g.n * g.cin, g.h, g.w, p, k);
    const std::vector<float> wpk = pack_3x3(wc.data(), g.cout, g.cin, k.co_block, false);
    direct_3x3(x_pad.data(), g.n, g.cin, g.cout, g.h, g.w, p, wpk.data(), b, y.data(), k);
  }

  return record(y, "conv2d", {x, weight, bias}, [x, weight, bias, xc, x_pad, wc, g](const Tensor& gy_in) {
    // The level may have changed since the forward (tests switch it): use one level throughout.
    const Conv3x3Kernels& k = conv3x3_kernels();
    const Plane3x3 p = plane3x3(g.h, g.w, k);
    Tensor gy = gy_in.contiguous();
    const bool need_x = x.requires_grad(), need_w = weight.requires_grad();
    const bool need_b = bias.defined() && bias.requires_grad();
    const bool winograd_x = need_x && use_winograd(g.cout, g);
    const bool winograd_w = need_w && use_winograd_weight_grad(g);
    std::vector<double> plane_sums(need_b ? g.n * g.cout : 0);
    Tensor dy_pad;  // for the direct input gradient only
    if (need_x && !winograd_x) {
      dy_pad = Tensor::empty({g.n, g.cout, p.plane});
      pad_planes(gy.data(), dy_pad.data(), g.n * g.cout, g.h, g.w, p, k, need_b ? plane_sums.data() : nullptr);
    } else if (need_b) {  // no dy_pad to take the bias gradient's plane sums on the way
      parallel_for(g.n * g.cout, 8, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) plane_sums[i] = kernels().sum(gy.data() + i * g.h * g.w, g.h * g.w);
      });
    }
    if (need_x) {
      Tensor dx = Tensor::empty(x.shape());
      if (winograd_x) {
        const std::vector<float> u = pack_winograd(wc.data(), g.cout, g.cin, k.co_block, true);
        winograd_3x3(gy.data(), g.n, g.cout, g.cin, g.h, g.w, u.data(), nullptr, dx.data(), k);
      } else {
        const std::vector<float> wt = pack_3x3(wc.data(), g.cout, g.cin, k.co_block, true);
        direct_3x3(dy_pad.data(), g.n, g.cout, g.cin, g.h, g.w, p, wt.data(), nullptr, dx.data(), k);
      }
      accumulate_grad(x, dx);
    }
    if (winograd_w) {
      Tensor dw = Tensor::empty(weight.shape());
      winograd_weight_grad(xc.data(), gy.data(), g, k, dw.data());
      accumulate_grad(weight, dw);
    } else if (need_w) {
      // The direct kernel reads x zero-bordered: the forward's copy, unless the forward took
      // Winograd (no copy) or ran at another SIMD level (another plane size).
      Tensor xp = x_pad;
      if (!xp.defined() || xp.size(2) != p.plane) {
        xp = Tensor::empty({g.n, g.cin, p.plane});
        pad_planes(xc.data(), xp.data(), g.n * g.cin, g.h, g.w, p, k);
      }
      // The weight-gradient kernel wants dy channels-last, dyt [n, h*w, co_stride] (channels
      // padded with zeros to whole vectors): it keeps output channels in vector lanes.
      const int64_t hw = g.h * g.w, co_stride = (g.cout + k.vec - 1) / k.vec * k.vec;
      Tensor dyt = Tensor::empty({g.n, hw, co_stride});
      parallel_for(g.n, 1, [&](int64_t b, int64_t e) {
        for (int64_t s = b; s < e; ++s)
          k.to_channels_last(gy.data() + s * g.cout * hw, g.cout, hw, dyt.data() + s * hw * co_stride, co_stride);
      });
      Tensor dw = Tensor::zeros(weight.shape());
      // Work items (block of dw_co outputs, input channel), blocks outermost so that
      // consecutive items reuse one block of dyt.
      const int64_t block = k.dw_co, blocks = (g.cout + block - 1) / block, ldw = g.cin * 9;
      // Samples in groups whose dyt block (~512 KB) stays in L2 while every input channel reads
      // it; the group size depends on the shape only, so the sums' order does too.
      const int64_t group = std::clamp<int64_t>((1 << 19) / (hw * block * 4), 1, g.n);
      for (int64_t s0 = 0; s0 < g.n; s0 += group) {
        const int64_t ns = std::min(group, g.n - s0);
        parallel_for(blocks * g.cin, 1, [&](int64_t b, int64_t e) {
          for (int64_t item = b; item < e; ++item) {
            const int64_t co0 = item / g.cin * block, ci = item % g.cin;
            k.weight_grad(dyt.data() + s0 * hw * co_stride + co0, co_stride, hw * co_stride,
                          xp.data() + (s0 * g.cin + ci) * p.plane, g.cin * p.plane, ns, g.h, g.w, p.wp,
                          std::min(block, g.cout - co0), dw.data() + co0 * ldw + ci * 9, ldw);
          }
        });
      }
      accumulate_grad(weight, dw);
    }
    if (need_b) {
      Tensor db = Tensor::empty(bias.shape());
      for (int64_t c = 0; c < g.cout; ++c) {
        double acc = 0.0;
        for (int64_t s = 0; s < g.n; ++s) acc += plane_sums[s * g.cout + c];
        db.data()[c] = static_cast<float>(acc);
      }
      accumulate_grad(bias, db);
    }
  });
}

}  // namespace

void set_conv3x3_algorithm(Conv3x3Algorithm algorithm) { g_conv3x3_algorithm = algorithm; }
Conv3x3Algorithm conv3x3_algorithm() { return g_conv3x3_algorithm.load(); }

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
  if (g.kh == 3 && g.kw == 3 && o.stride_h == 1 && o.stride_w == 1 && o.pad_h == 1 && o.pad_w == 1 &&
      o.dilation_h == 1 && o.dilation_w == 1 && g.groups == 1)
    return conv2d_3x3(x, weight, bias, g);

  Tensor xc = x.detach().contiguous(), wc = weight.detach().contiguous();
  Tensor bc = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = Tensor::empty({g.n, g.cout, g.oh, g.ow});
  const int64_t x_sample = g.cin * g.h * g.w, y_sample = g.cout * g.ohw();

  for_each_chunk(g.n, [&](int64_t, int64_t begin, int64_t end) {
    Tensor col = Tensor::empty({g.direct ? 0 : g.kg * g.ohw()});
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
      Tensor col = Tensor::empty({g.direct ? 0 : g.kg * g.ohw()});
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
