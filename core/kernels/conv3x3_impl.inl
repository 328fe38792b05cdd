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
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "core/kernels/conv3x3.hpp"

namespace nl::NL_SIMD_NS {
namespace {

#include "core/kernels/vector_impl.inl"

// Block sizes per level: accumulators + loads must fit the register file
// (32 zmm for AVX-512, 16 ymm / xmm otherwise).
#if defined(__AVX512F__)
constexpr int kCB = 8, kQV = 3, kDwVecs = 2;
#elif defined(__AVX2__)
constexpr int kCB = 4, kQV = 2, kDwVecs = 1;
#else
constexpr int kCB = 4, kQV = 2, kDwVecs = 1;
#endif

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

// ---- Winograd F(2x2, 3x3) (the math is in conv3x3.hpp) ----

// Rows in whole vectors: the last one of each row is loaded with zeros past the row's end, and
// its store writes the row's right border and the next row's left one; what it writes past
// those is the next row's, stored after.
void pad_plane(const float* src, int64_t h, int64_t w, int64_t plane, float* dst) {
  const int64_t wp = w + 2;
  std::fill(dst, dst + wp + 1, 0.0f);  // the top border row and the first row's left border
  for (int64_t r = 0; r < h; ++r) {
    float* row = dst + (r + 1) * wp + 1;
    int64_t j = 0;
    for (; j + kVec <= w; j += kVec) store(row + j, load(src + r * w + j));
    store(row + j, load_first(src + r * w + j, w - j));
    row[w] = row[w + 1] = 0.0f;  // when the row ended one lane short of a vector (odd w)
  }
  std::fill(dst + (h + 1) * wp + 1, dst + plane, 0.0f);  // the bottom border row and the slack
}

// Tile rows per vector. A row of tw tiles fills a vector only when tw >= kVec; shorter rows
// share one vector's lanes instead of leaving most of them idle: 4 when kVec = 4 tw (the 8x8
// maps at AVX-512), else 2 when 2 tw <= kVec (the 16x16 maps, tw = kVec / 2, and the MNIST CNN's
// 14x14, tw = 7: 14 of 16 lanes instead of 7), R times fewer transforms. Their tiles are
// consecutive in V, Z and M (tile = row * tw + tx), so only the loads of the patches and the
// stores of the outputs see the rows apart.
inline int rows_per_vector(int64_t tw) { return tw * 4 == kVec ? 4 : tw * 2 <= kVec ? 2 : 1; }

// R = 2: lanes [0, tw) hold tile row 0's tiles, [tw, 2 tw) row 1's. The lane of row 0's tile t
// reads position 2t + parity of row 0's load (operand a), row 1's that of row 1's (operand b).
// Made once per call of the transforms, with vector operations: built lane by lane at every
// load, these indices made training 0.75-0.91x as fast (MNIST CNN, CIFAR CNN, ResNet-20).
struct TwoRowLanes {
  vi even, odd;
  explicit TwoRowLanes(int64_t tw) {
    vi lane;
    for (int l = 0; l < kVec; ++l) lane[l] = l;
    const vi t = vi{} + static_cast<int>(tw);
    even = (lane < t ? 2 * lane : kVec + 2 * (lane - t)) & (2 * kVec - 1);  // lanes past 2 tw: never stored
    odd = (even + 1) & (2 * kVec - 1);
  }
};

// Columns col .. col + kVec - 1 (col >= -1) of an image row of w floats, zero outside [0, w):
// the zero border of the padded image without a padded copy. Null row: a border row. Only the
// row's own floats are read (the last vector of the last row may end the tensor).
inline vf load_columns(const float* row, int64_t col, int64_t w) {
  if (!row) return vf{};
  if (col >= 0) return load_up_to(row + col, w - col);
  vi shift;  // col = -1: lane 0 is the left border, lane l column l - 1
  for (int l = 0; l < kVec; ++l) shift[l] = l == 0 ? 0 : kVec + l - 1;
  return __builtin_shuffle(vf{}, load_first(row, std::min<int64_t>(w, kVec - 1)), shift);
}

// Columns 2tx and 2tx + 1 of R rows of tw tiles each (R = 1: kVec tiles of one row), the
// first of them at column col of the image rows rows[q]: lanes [q tw, (q + 1) tw) hold row q's.
// R = 4 joins the first halves of two rows' loads.
inline void load_even_odd_rows(const float* const* rows, int R, const TwoRowLanes& lanes, int64_t col, int64_t w,
                               vf& even, vf& odd) {
  if (R == 1) return split_even_odd(load_columns(rows[0], col, w), load_columns(rows[0], col + kVec, w), even, odd);
  vf a = load_columns(rows[0], col, w), b = load_columns(rows[1], col, w);
  if (R == 2) {
    even = __builtin_shuffle(a, b, lanes.even);
    odd = __builtin_shuffle(a, b, lanes.odd);
    return;
  }
  vi halves;  // R = 4, tw = kVec / 4: the first kVec / 2 lanes of each operand
  for (int l = 0; l < kVec; ++l) halves[l] = l < kVec / 2 ? l : kVec + l - kVec / 2;
  a = __builtin_shuffle(a, b, halves);
  b = __builtin_shuffle(load_columns(rows[2], col, w), load_columns(rows[3], col, w), halves);
  split_even_odd(a, b, even, odd);
}

// The image rows that tile rows [r, r + R) of a block starting at tile row row0 read: rows[j][q]
// = row 2ty + first + j of the q-th one's sample (s = row / th), null where that row is the zero
// border (outside [0, 2 th)); past the block's last row, that row again (its values land in
// lanes past the tiles).
template <int J>
inline void tile_row_images(const float* x, int64_t sample_stride, int64_t th, int64_t w, int64_t row0, int64_t r,
                            int64_t rows, int R, int first, const float* (&image_rows)[J][4]) {
  for (int q = 0; q < R; ++q) {
    const int64_t row = row0 + std::min<int64_t>(r + q, rows - 1), s = row / th, ty = row % th;
    for (int j = 0; j < J; ++j) {
      const int64_t y = 2 * ty + first + j;
      image_rows[j][q] = y >= 0 && y < 2 * th ? x + s * sample_stride + y * w : nullptr;
    }
  }
}

// V = B^T d B for the tiles of R tile rows (tiles in lanes; R = rows_per_vector(tw)). x[j][q]:
// the image row of row j of the q-th tile row's patches (image rows 2ty - 1 .. 2ty + 2, columns
// 2tx - 1 .. 2tx + 2: padded coordinates minus one); v[xi * v_xi + q tw + tx] receives V[xi] of
// its tile tx. Whole vectors are stored: lanes past the rows' tiles hold the next tiles' values,
// which the next tile rows (stored at v + R tw) overwrite, and the buffer has a vector of slack
// after the last row.
void input_tile_rows(const float* const (&x)[4][4], int R, int64_t tw, float* v, int64_t v_xi) {
  const int64_t w = 2 * tw;
  const TwoRowLanes lanes(tw);
  for (int64_t tx0 = 0; tx0 < tw; tx0 += kVec) {
    vf hd[4][4];  // hd[j][k] = (d B)[j][k]: row j of the tile, combined across its columns
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      vf d0, d1, d2, d3;  // columns 2tx - 1 .. 2tx + 2
      load_even_odd_rows(x[j], R, lanes, 2 * tx0 - 1, w, d0, d1);
      load_even_odd_rows(x[j], R, lanes, 2 * tx0 + 1, w, d2, d3);
      hd[j][0] = d0 - d2, hd[j][1] = d1 + d2, hd[j][2] = d2 - d1, hd[j][3] = d1 - d3;
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {  // B^T (d B): the same combination across rows
      store(v + (0 + k) * v_xi + tx0, hd[0][k] - hd[2][k]);
      store(v + (4 + k) * v_xi + tx0, hd[1][k] + hd[2][k]);
      store(v + (8 + k) * v_xi + tx0, hd[2][k] - hd[1][k]);
      store(v + (12 + k) * v_xi + tx0, hd[1][k] - hd[3][k]);
    }
  }
}

// Z = A dY A^T (the weight gradient's transform of dy) for the tiles of R tile rows: g[j][q] is
// row 2ty + j of dy for the q-th of them (a tile's own 2 x 2 outputs: no border);
// z[xi * z_xi + q tw + tx] receives Z[xi] of its tile tx (whole vectors, as in input_tile_rows).
void grad_tile_rows(const float* const (&g)[2][4], int R, int64_t tw, float* z, int64_t z_xi) {
  const int64_t w = 2 * tw;
  const TwoRowLanes lanes(tw);
  for (int64_t tx0 = 0; tx0 < tw; tx0 += kVec) {
    vf ga[2][4];  // ga[j][k] = (dY A^T)[j][k]: row j of the 2 x 2 tile, spread over 4 columns
#pragma GCC unroll 2
    for (int j = 0; j < 2; ++j) {
      vf d0, d1;  // columns 2tx, 2tx + 1
      load_even_odd_rows(g[j], R, lanes, 2 * tx0, w, d0, d1);
      ga[j][0] = d0, ga[j][1] = d0 + d1, ga[j][2] = d0 - d1, ga[j][3] = -d1;
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {  // A (dY A^T): the same spread over rows
      store(z + (0 + k) * z_xi + tx0, ga[0][k]);
      store(z + (4 + k) * z_xi + tx0, ga[0][k] + ga[1][k]);
      store(z + (8 + k) * z_xi + tx0, ga[0][k] - ga[1][k]);
      store(z + (12 + k) * z_xi + tx0, -ga[1][k]);
    }
  }
}

// Y = A^T M A + bias for one output channel and R tile rows (R = rows_per_vector(tw)), of which
// the first `valid` exist: m[xi * m_xi + q tw + tx] is M[xi] of tile tx of the q-th; its 2 x 2
// outputs go to out[q] (row 2ty) and out[q] + w (row 2ty + 1).
void output_tile_rows(const float* m, int64_t m_xi, int64_t tw, float bias, float* const* out, int R, int valid,
                      int64_t w) {
  for (int64_t tx0 = 0; tx0 < tw; tx0 += kVec) {
    vf am[2][4];  // (A^T M)[a][k]
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
      const vf m0 = load(m + (0 + k) * m_xi + tx0), m1 = load(m + (4 + k) * m_xi + tx0);
      const vf m2 = load(m + (8 + k) * m_xi + tx0), m3 = load(m + (12 + k) * m_xi + tx0);
      am[0][k] = m0 + m1 + m2, am[1][k] = m1 - m2 - m3;
    }
#pragma GCC unroll 2
    for (int a = 0; a < 2; ++a) {
      const vf y0 = am[a][0] + am[a][1] + am[a][2] + bias, y1 = am[a][1] - am[a][2] - am[a][3] + bias;
      vf first, second;  // (y0 of tile 0, y1 of tile 0, y0 of tile 1, ...)
      join_even_odd(y0, y1, first, second);
      if (R == 1) {
        const int64_t n = 2 * std::min<int64_t>(kVec, tw - tx0);  // output columns of these tiles
        float* row = out[0] + a * w + 2 * tx0;
        store_first(row, first, std::min<int64_t>(n, kVec));
        if (n > kVec) store_first(row + kVec, second, n - kVec);
      } else if (R == 2) {  // w = 2 tw <= kVec: row 0 in first's lanes [0, w), row 1 from lane w on
        store_first(out[0] + a * w, first, w);
        if (valid > 1) {
          vi lane;
          for (int l = 0; l < kVec; ++l) lane[l] = l;
          const vi from_w = (lane + static_cast<int>(w)) & (2 * kVec - 1);
          store_first(out[1] + a * w, __builtin_shuffle(first, second, from_w), w);
        }
      } else {  // R = 4, w = kVec / 2: half a vector per row
        vi upper;  // lanes kVec / 2 .. kVec - 1 moved down
        for (int l = 0; l < kVec; ++l) upper[l] = (l + kVec / 2) % kVec;
        const vf rows[4] = {first, __builtin_shuffle(first, upper), second, __builtin_shuffle(second, upper)};
        for (int q = 0; q < valid; ++q) store_first(out[q] + a * w, rows[q], w);
      }
    }
  }
}

// M[xi][c][t] = sum_ci U[xi][c][ci] V[xi][ci][t] for kCB channels c and tiles [t0, t0 + QV*kVec):
// the forward kernel's register block with one tap.
template <int QV>
inline void tile_products(const float* v, int64_t cin, int64_t tps, const float* u, float* m, int64_t t0) {
  vf acc[kCB][QV] = {};
  for (int64_t ci = 0; ci < cin; ++ci) {
    vf x[QV];
#pragma GCC unroll 4
    for (int j = 0; j < QV; ++j) x[j] = load(v + ci * tps + t0 + j * kVec);
#pragma GCC unroll 8
    for (int c = 0; c < kCB; ++c) {
      const float uc = u[ci * kCB + c];
#pragma GCC unroll 4
      for (int j = 0; j < QV; ++j) acc[c][j] += x[j] * uc;
    }
  }
  for (int c = 0; c < kCB; ++c)
    for (int j = 0; j < QV; ++j) store(m + c * tps + t0 + j * kVec, acc[c][j]);
}

// The scratch of a block of tp tiles: per input channel (V) and per block channel (M), tps
// floats; each of the 16 xi planes is padded by a cache line (winograd_xi_stride).
struct WinogradLayout {
  int64_t tps, v_xi, m_xi;
  WinogradLayout(int64_t cin, int64_t tp)
      : tps(winograd_tile_stride(tp, kVec)), v_xi(winograd_xi_stride(cin, tps)), m_xi(winograd_xi_stride(kCB, tps)) {}
  int64_t floats() const { return 16 * (v_xi + m_xi); }
};

int64_t winograd_scratch(int64_t cin, int64_t tiles) { return WinogradLayout(cin, tiles).floats(); }

void winograd_input(const float* x, int64_t sample_stride, int64_t th, int64_t tw, int64_t row0, int64_t rows,
                    float* v, int64_t v_xi) {
  const int R = rows_per_vector(tw);
  for (int64_t r = 0; r < rows; r += R) {
    const float* image_rows[4][4];
    tile_row_images(x, sample_stride, th, 2 * tw, row0, r, rows, R, -1, image_rows);
    input_tile_rows(image_rows, R, tw, v + r * tw, v_xi);
  }
}

void winograd_output_grad(const float* g, int64_t sample_stride, int64_t th, int64_t tw, int64_t row0, int64_t rows,
                          float* z, int64_t z_xi) {
  const int R = rows_per_vector(tw);
  for (int64_t r = 0; r < rows; r += R) {
    const float* image_rows[2][4];
    tile_row_images(g, sample_stride, th, 2 * tw, row0, r, rows, R, 0, image_rows);
    grad_tile_rows(image_rows, R, tw, z + r * tw, z_xi);
  }
}

void winograd(const float* in, int64_t cin, int64_t th, int64_t tw, const float* u, int64_t cout, const float* bias,
              float* out, int64_t row0, int64_t rows, float* scratch) {
  const int64_t tp = rows * tw, h = 2 * th, w = 2 * tw;
  const WinogradLayout L(cin, tp);
  float* v = scratch;
  float* m = scratch + 16 * L.v_xi;
  for (int64_t ci = 0; ci < cin; ++ci)
    winograd_input(in + ci * h * w, cin * h * w, th, tw, row0, rows, v + ci * L.tps, L.v_xi);
  // The products run over whole vectors, up to tq: the lanes past the last tile hold whatever
  // the scratch held (it is not cleared per call), set to zero so that they cannot be slow
  // (subnormal) operands. Their results are never stored.
  const int64_t tq = (tp + kVec - 1) / kVec * kVec;
  for (int xi = 0; xi < 16; ++xi)
    for (int64_t ci = 0; ci < cin; ++ci) {
      float* tail = v + xi * L.v_xi + ci * L.tps;
      std::fill(tail + tp, tail + tq, 0.0f);
    }
  for (int64_t co0 = 0; co0 < cout; co0 += kCB) {
    const float* u_block = u + co0 * 16 * cin;  // [16][cin][kCB]
    for (int xi = 0; xi < 16; ++xi) {
      const float* vx = v + xi * L.v_xi;
      const float* ux = u_block + xi * cin * kCB;
      float* mx = m + xi * L.m_xi;
      // Blocks of kQV vectors, but 2 + 2 rather than 3 + 1 at the end: a vector alone loads a
      // weight per FMA (the ResNet-20 blocks at 8x8 and 32x32 have 4 and 16 vectors of tiles).
      int64_t t = 0;
      for (; tq - t >= kQV * kVec && !(kQV == 3 && tq - t == 4 * kVec); t += kQV * kVec)
        tile_products<kQV>(vx, cin, L.tps, ux, mx, t);
      for (; tq - t >= 2 * kVec; t += 2 * kVec) tile_products<2>(vx, cin, L.tps, ux, mx, t);
      for (; t < tq; t += kVec) tile_products<1>(vx, cin, L.tps, ux, mx, t);
    }
    const int R = rows_per_vector(tw);
    for (int64_t c = 0; c < std::min<int64_t>(kCB, cout - co0); ++c)
      for (int64_t r = 0; r < rows; r += R) {
        const int valid = static_cast<int>(std::min<int64_t>(R, rows - r));
        float* dst[4];
        for (int q = 0; q < valid; ++q) {
          const int64_t s = (row0 + r + q) / th, ty = (row0 + r + q) % th;
          dst[q] = out + ((s * cout + co0 + c) * h + 2 * ty) * w;
        }
        output_tile_rows(m + c * L.tps + r * tw, L.m_xi, tw, bias ? bias[co0 + c] : 0.0f, dst, R, valid, w);
      }
  }
}

}  // namespace

extern const Conv3x3Kernels conv3x3_table;
const Conv3x3Kernels conv3x3_table = {kCB,      kVec,           kDwVecs * kVec, forward,
                                      to_channels_last, weight_grad, winograd, winograd_scratch,
                                      winograd_input, winograd_output_grad, pad_plane};

}  // namespace nl::NL_SIMD_NS
