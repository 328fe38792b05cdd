// normlab core: direct 3x3 convolution kernels, written once with GCC vector types and
// compiled once per SIMD level (normlab_simd_kernel in CMakeLists.txt, see conv3x3.hpp).
//
// Register blocking. The forward keeps a CB x QV block of accumulators (CB output channels x
// QV vectors of consecutive positions) in registers for the whole sum over input channels and
// taps: per (channel, tap) it loads QV input vectors and CB weights (broadcast) for CB*QV FMAs.
// The weight gradient reads dy channels-last and keeps 9 x V accumulators (9 taps x V vectors of
// output channels) while it walks the positions; per position it loads V vectors of dy and
// broadcasts 9 input values, for 9 V FMAs.
//
// Expects: NL_SIMD_NS, this level's namespace (simd_scalar | simd_avx2 | simd_avx512), defined by
// the translation unit normlab_simd_kernel (CMakeLists.txt) generates for each level.
#include <cstring>

#include "core/kernels/conv3x3.hpp"

namespace nl::NL_SIMD_NS {
namespace {

// Block sizes per level: accumulators + loads must fit the register file
// (32 zmm for AVX-512, 16 ymm / xmm otherwise). The "scalar" level uses SSE2 vectors of 4,
// which every x86-64 has.
#if defined(__AVX512F__)
constexpr int kVec = 16, kCB = 8, kQV = 3, kDwVecs = 2;
#elif defined(__AVX2__)
constexpr int kVec = 8, kCB = 4, kQV = 2, kDwVecs = 1;
#else
constexpr int kVec = 4, kCB = 4, kQV = 2, kDwVecs = 1;
#endif
typedef float vf __attribute__((vector_size(kVec * sizeof(float))));

inline vf load(const float* p) {  // unaligned
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }

// Positions [q0, q0 + QV*kVec) of CB outputs.
template <int QV>
inline void forward_block(const float* in, int64_t cin, int64_t plane, const int64_t* off, const float* wpk, float* out,
                          int64_t q_count, int64_t q0) {
  vf acc[kCB][QV] = {};
  for (int64_t ci = 0; ci < cin; ++ci) {
    const float* src = in + ci * plane + q0;
    const float* w = wpk + ci * 9 * kCB;
#pragma GCC unroll 9
    for (int t = 0; t < 9; ++t) {
      vf x[QV];
#pragma GCC unroll 4
      for (int j = 0; j < QV; ++j) x[j] = load(src + off[t] + j * kVec);
#pragma GCC unroll 8
      for (int c = 0; c < kCB; ++c) {
        const float wc = w[t * kCB + c];
#pragma GCC unroll 4
        for (int j = 0; j < QV; ++j) acc[c][j] += x[j] * wc;
      }
    }
  }
  for (int c = 0; c < kCB; ++c)
    for (int j = 0; j < QV; ++j) store(out + c * q_count + q0 + j * kVec, acc[c][j]);
}

void forward(const float* in, int64_t cin, int64_t plane, int64_t wp, const float* wpk, float* out, int64_t q_count) {
  const int64_t off[9] = {0, 1, 2, wp, wp + 1, wp + 2, 2 * wp, 2 * wp + 1, 2 * wp + 2};
  int64_t q = 0;
  for (; q + kQV * kVec <= q_count; q += kQV * kVec) forward_block<kQV>(in, cin, plane, off, wpk, out, q_count, q);
  // The last few vectors one at a time, rather than rounding every plane up to kQV vectors
  // (that computed 20% more positions than needed on 8x8 maps).
  if (kQV > 2 && q + 2 * kVec <= q_count) forward_block<2>(in, cin, plane, off, wpk, out, q_count, q), q += 2 * kVec;
  for (; q < q_count; q += kVec) forward_block<1>(in, cin, plane, off, wpk, out, q_count, q);
}

// A kVec x kVec tile transposed in registers, in log2(kVec) stages: the stage of width b swaps
// the off-diagonal b x b blocks of every pair of rows (i, i + b), so after the stage of
// width 1 row j holds what was column j.
typedef int vi __attribute__((vector_size(kVec * sizeof(int))));
template <int B>
inline void swap_blocks(vf& a, vf& b) {
  vi lo, hi;
  for (int l = 0; l < kVec; ++l) {
    lo[l] = (l & B) ? kVec + l - B : l;
    hi[l] = (l & B) ? kVec + l : l + B;
  }
  const vf new_a = __builtin_shuffle(a, b, lo), new_b = __builtin_shuffle(a, b, hi);
  a = new_a, b = new_b;
}

template <int B>
inline void transpose_stage(vf* r) {
  if constexpr (B >= 1) {
    for (int i = 0; i < kVec; ++i)
      if ((i & B) == 0) swap_blocks<B>(r[i], r[i + B]);
    transpose_stage<B / 2>(r);
  }
}

void to_channels_last(const float* src, int64_t channels, int64_t hw, float* dst, int64_t co_stride) {
  int64_t q0 = 0;
  for (; q0 + kVec <= hw; q0 += kVec) {
    for (int64_t c0 = 0; c0 < co_stride; c0 += kVec) {
      vf r[kVec];
      for (int i = 0; i < kVec; ++i) r[i] = c0 + i < channels ? load(src + (c0 + i) * hw + q0) : vf{};
      transpose_stage<kVec / 2>(r);
      for (int j = 0; j < kVec; ++j) store(dst + (q0 + j) * co_stride + c0, r[j]);
    }
  }
  for (; q0 < hw; ++q0)  // the last positions, fewer than a vector
    for (int64_t c = 0; c < co_stride; ++c) dst[q0 * co_stride + c] = c < channels ? src[c * hw + q0] : 0.0f;
}

// One input channel's 9 taps for V vectors of output channels (V * kVec consecutive channels
// of dyt's rows): acc[t][v] += dyt[p][v-th vector] * x[p + off(t)] over every real position p.
// The channels sit in the lanes, so the sum runs over positions in each lane on its own: no
// lane sums at the end, and the border columns of the padded plane are never visited.
template <int V>
void weight_grad_channel(const float* dyt, int64_t co_stride, int64_t dyt_stride, const float* in, int64_t in_stride,
                         int64_t n, int64_t h, int64_t w, int64_t wp, int64_t rows, float* dw, int64_t ldw) {
  const int64_t off[9] = {0, 1, 2, wp, wp + 1, wp + 2, 2 * wp, 2 * wp + 1, 2 * wp + 2};
  vf acc[9][V] = {};
  for (int64_t s = 0; s < n; ++s) {
    for (int64_t oh = 0; oh < h; ++oh) {
      const float* g_row = dyt + s * dyt_stride + oh * w * co_stride;
      const float* x_row = in + s * in_stride + oh * wp;
      for (int64_t ow = 0; ow < w; ++ow) {
        vf g[V];
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) g[v] = load(g_row + ow * co_stride + v * kVec);
        const float* x = x_row + ow;
#pragma GCC unroll 9
        for (int t = 0; t < 9; ++t) {
          const float xt = x[off[t]];  // broadcast: one load, no cache-line split
#pragma GCC unroll 4
          for (int v = 0; v < V; ++v) acc[t][v] += g[v] * xt;
        }
      }
    }
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int t = 0; t < 9; ++t) dw[r * ldw + t] += acc[t][r / kVec][r % kVec];
}

void weight_grad(const float* dyt, int64_t co_stride, int64_t dyt_stride, const float* in, int64_t in_stride, int64_t n,
                 int64_t h, int64_t w, int64_t wp, int64_t rows, float* dw, int64_t ldw) {
  if (rows > kVec) weight_grad_channel<kDwVecs>(dyt, co_stride, dyt_stride, in, in_stride, n, h, w, wp, rows, dw, ldw);
  else weight_grad_channel<1>(dyt, co_stride, dyt_stride, in, in_stride, n, h, w, wp, rows, dw, ldw);
}

}  // namespace

extern const Conv3x3Kernels conv3x3_table;
const Conv3x3Kernels conv3x3_table = {kCB, kVec, kDwVecs * kVec, forward, to_channels_last, weight_grad};

}  // namespace nl::NL_SIMD_NS
