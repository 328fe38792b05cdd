// normlab core: direct 3x3 convolution kernels, written once with GCC vector types and
// compiled once per SIMD level (normlab_simd_kernel in CMakeLists.txt, see conv3x3.hpp).
//
// Register blocking. The forward keeps a CB x QV block of accumulators (CB output channels x
// QV vectors of consecutive positions) in registers for the whole sum over input channels and
// taps: per (channel, tap) it loads QV input vectors and CB weights (broadcast) for CB*QV FMAs.
// The weight gradient keeps R x 9 accumulators (R output channels x 9 taps) while it slides
// over the positions, and reduces each to a scalar at the end (sum_lanes: a fixed butterfly).
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
constexpr int kVec = 16, kCB = 8, kQV = 3, kRows = 3;
#elif defined(__AVX2__)
constexpr int kVec = 8, kCB = 4, kQV = 2, kRows = 1;
#else
constexpr int kVec = 4, kCB = 4, kQV = 2, kRows = 1;
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

// Lane sums of kVec vectors at once: sums[i] = the sum of a[i]'s lanes. A butterfly: each step
// adds the two halves (width w) of every vector, packing the halves of two vectors into one,
// so kVec vectors become one whose lanes are their sums, in log2(kVec) steps of two shuffles
// and an add per pair -- instead of kVec - 1 scalar adds per vector, which at batch 2 on an
// 8x8 map cost more than the FMAs. Lane l of the result holds vector bit_reverse(l).
typedef int vi __attribute__((vector_size(kVec * sizeof(int))));
template <int W>
inline vf fold_halves(vf a, vf b) {  // lanes with bit W clear: a's halves summed; set: b's
  vi lo, hi;
  for (int l = 0; l < kVec; ++l) {
    lo[l] = (l & W) ? kVec + l - W : l;
    hi[l] = (l & W) ? kVec + l : l + W;
  }
  return __builtin_shuffle(a, b, lo) + __builtin_shuffle(a, b, hi);
}

inline void sum_lanes_block(const vf* a, float* sums) {  // exactly kVec vectors
  vf v[kVec];
  for (int i = 0; i < kVec; ++i) v[i] = a[i];
  int count = kVec;
  if constexpr (kVec >= 16) { for (int i = 0; i < count / 2; ++i) v[i] = fold_halves<8>(v[2 * i], v[2 * i + 1]); count /= 2; }
  if constexpr (kVec >= 8) { for (int i = 0; i < count / 2; ++i) v[i] = fold_halves<4>(v[2 * i], v[2 * i + 1]); count /= 2; }
  for (int i = 0; i < count / 2; ++i) v[i] = fold_halves<2>(v[2 * i], v[2 * i + 1]);
  count /= 2;
  v[0] = fold_halves<1>(v[0], v[1]);
  for (int l = 0; l < kVec; ++l) {
    int src = 0;  // the vector whose sum landed in lane l: l's bits reversed
    for (int bit = 1, rev = kVec / 2; bit < kVec; bit <<= 1, rev >>= 1)
      if (l & bit) src |= rev;
    sums[src] = v[0][l];
  }
}

inline void sum_lanes(const vf* a, int count, float* sums) {
  int i = 0;
  for (; i + kVec <= count; i += kVec) sum_lanes_block(a + i, sums + i);
  if (i < count) {  // the rest, padded with zero vectors
    vf pad[kVec] = {};
    float pad_sums[kVec];
    for (int j = i; j < count; ++j) pad[j - i] = a[j];
    sum_lanes_block(pad, pad_sums);
    for (int j = i; j < count; ++j) sums[j] = pad_sums[j - i];
  }
}

template <int R>
void weight_grad_rows(const float* dy, int64_t dy_stride, const float* in, int64_t in_stride, int64_t n, int64_t cin,
                      int64_t plane, int64_t wp, int64_t q_count, float* dw, int64_t ldw) {
  const int64_t off[9] = {0, 1, 2, wp, wp + 1, wp + 2, 2 * wp, 2 * wp + 1, 2 * wp + 2};
  for (int64_t ci = 0; ci < cin; ++ci) {
    // The accumulators stay in registers over the whole batch: reducing them to scalars
    // costs about as much as a plane's worth of FMAs, so it is done once per (rows, ci).
    vf acc[R][9] = {};
    for (int64_t s = 0; s < n; ++s) {
      const float* src = in + s * in_stride + ci * plane;
      const float* g_s = dy + s * dy_stride;
      for (int64_t q = 0; q < q_count; q += kVec) {
        vf g[R];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) g[r] = load(g_s + r * plane + q);
#pragma GCC unroll 9
        for (int t = 0; t < 9; ++t) {
          vf x = load(src + q + off[t]);
          // Keep x in a register: otherwise GCC folds the load into each of the R FMAs and
          // the loop becomes bound by (mostly cache-line-splitting) loads instead of FMAs.
          asm("" : "+x"(x));
#pragma GCC unroll 4
          for (int r = 0; r < R; ++r) acc[r][t] += g[r] * x;
        }
      }
    }
    float sums[R * 9];
    sum_lanes(&acc[0][0], R * 9, sums);
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < 9; ++t) dw[r * ldw + ci * 9 + t] += sums[r * 9 + t];
  }
}

void weight_grad(const float* dy, int64_t dy_stride, const float* in, int64_t in_stride, int64_t n, int64_t rows,
                 int64_t cin, int64_t plane, int64_t wp, int64_t q_count, float* dw, int64_t ldw) {
  constexpr int kPair = kRows;
  int64_t r = 0;
  for (; r + kPair <= rows; r += kPair)
    weight_grad_rows<kPair>(dy + r * plane, dy_stride, in, in_stride, n, cin, plane, wp, q_count, dw + r * ldw, ldw);
  for (; r < rows; ++r)
    weight_grad_rows<1>(dy + r * plane, dy_stride, in, in_stride, n, cin, plane, wp, q_count, dw + r * ldw, ldw);
}

}  // namespace

extern const Conv3x3Kernels conv3x3_table;
const Conv3x3Kernels conv3x3_table = {kCB, kVec, kRows, forward, weight_grad};

}  // namespace nl::NL_SIMD_NS
