// normlab layers: LSTM and GRU. See recurrent.hpp for the equations.
#include "layers/recurrent.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include <fmt/format.h>

#include "core/autograd.hpp"
#include "core/kernels/kernels.hpp"
#include "layers/norm/factory.hpp"
#include "layers/norm/recurrent_batch_norm.hpp"

namespace nl {

std::vector<std::string> recurrent_norm_names() { return {"none", "ln", "rms", "bn"}; }

static void check_state_pair(const char* op, const Tensor& gates, int64_t g, const Tensor& state) {
  NL_CHECK(state.dim() == 2 && gates.dim() == 2 && gates.size(0) == state.size(0) &&
               gates.size(1) == g * state.size(1),
           op, ": expected gates [B, ", g, "H] and state [B, H], got ", gates.shape(), " and ", state.shape());
}

// ---- fused pointwise steps; backward recomputes the gate activations from the inputs ----

// i, f, g of every row of [B, 4H] pre-activations G -> a [B, 3H]: sigmoid, sigmoid, tanh, by the
// kernel table's vectorized functions (as lstm_sequence; std::exp / std::tanh per element took
// a fifth of a recurrent-BN LSTM step).
static Tensor lstm_ifg(const Tensor& G, int64_t B, int64_t H) {
  const KernelTable& k = kernels();
  Tensor a = Tensor::empty({B, 3 * H});
  for (int64_t b = 0; b < B; ++b) {
    const float* g = G.data() + b * 4 * H;
    float* out = a.data() + b * 3 * H;
    k.sigmoid(g, out, 2 * H);
    k.tanh(g + 2 * H, out + 2 * H, H);
  }
  return a;
}

Tensor lstm_cell_state(const Tensor& gates, const Tensor& c_prev) {
  check_state_pair("lstm_cell_state", gates, 4, c_prev);
  const int64_t B = c_prev.size(0), H = c_prev.size(1);
  Tensor G = gates.detach().contiguous(), C = c_prev.detach().contiguous();
  Tensor c = Tensor::empty({B, H});
  {
    const Tensor A = lstm_ifg(G, B, H);
    const float *pa = A.data(), *pc = C.data();
    float* out = c.data();
    for (int64_t b = 0; b < B; ++b) {
      const float* a = pa + b * 3 * H;  // i, f, g
      for (int64_t j = 0; j < H; ++j) out[b * H + j] = a[H + j] * pc[b * H + j] + a[j] * a[2 * H + j];
    }
  }
  return record(c, "lstm_cell_state", {gates, c_prev}, [gates, c_prev, G, C, B, H](const Tensor& grad) {
    Tensor dc = grad.contiguous();
    Tensor dgates = Tensor::zeros({B, 4 * H}), dprev = Tensor::empty({B, H});
    const Tensor A = lstm_ifg(G, B, H);
    const float *pa = A.data(), *pc = C.data(), *pd = dc.data();
    float *dg = dgates.data(), *dp = dprev.data();
    for (int64_t b = 0; b < B; ++b) {
      const float* a = pa + b * 3 * H;
      float* d = dg + b * 4 * H;
      for (int64_t j = 0; j < H; ++j) {
        const float i = a[j], f = a[H + j], gg = a[2 * H + j];
        const float dcj = pd[b * H + j];
        d[j] = dcj * gg * i * (1.0f - i);                       // d/d(i pre-activation)
        d[H + j] = dcj * pc[b * H + j] * f * (1.0f - f);        // d/d(f pre-activation)
        d[2 * H + j] = dcj * i * (1.0f - gg * gg);              // d/d(g pre-activation)
        dp[b * H + j] = dcj * f;                                // d/d(c_prev)
      }
    }
    if (gates.requires_grad()) accumulate_grad(gates, dgates);
    if (c_prev.requires_grad()) accumulate_grad(c_prev, dprev);
  });
}

// o = sigmoid(the 4th quarter of each row of G) and tanh(C), [B, H] each, vectorized as lstm_ifg.
static std::pair<Tensor, Tensor> lstm_o_tanh_c(const Tensor& G, const Tensor& C, int64_t B, int64_t H) {
  const KernelTable& k = kernels();
  Tensor o = Tensor::empty({B, H}), tc = Tensor::empty({B, H});
  for (int64_t b = 0; b < B; ++b) k.sigmoid(G.data() + b * 4 * H + 3 * H, o.data() + b * H, H);
  k.tanh(C.data(), tc.data(), B * H);
  return {o, tc};
}

Tensor lstm_cell_output(const Tensor& gates, const Tensor& c_normed) {
  check_state_pair("lstm_cell_output", gates, 4, c_normed);
  const int64_t B = c_normed.size(0), H = c_normed.size(1);
  Tensor G = gates.detach().contiguous(), C = c_normed.detach().contiguous();
  Tensor h = Tensor::empty({B, H});
  {
    const auto [o, tc] = lstm_o_tanh_c(G, C, B, H);
    const float *po = o.data(), *ptc = tc.data();
    float* out = h.data();
    for (int64_t i = 0; i < B * H; ++i) out[i] = po[i] * ptc[i];
  }
  return record(h, "lstm_cell_output", {gates, c_normed}, [gates, c_normed, G, C, B, H](const Tensor& grad) {
    Tensor dh = grad.contiguous();
    Tensor dgates = Tensor::zeros({B, 4 * H}), dc = Tensor::empty({B, H});
    const auto [o_t, tc_t] = lstm_o_tanh_c(G, C, B, H);
    const float *po = o_t.data(), *ptc = tc_t.data(), *pd = dh.data();
    float *dg = dgates.data(), *dcp = dc.data();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < H; ++j) {
        const float o = po[b * H + j], tc = ptc[b * H + j], d = pd[b * H + j];
        dg[b * 4 * H + 3 * H + j] = d * tc * o * (1.0f - o);
        dcp[b * H + j] = d * o * (1.0f - tc * tc);
      }
    if (gates.requires_grad()) accumulate_grad(gates, dgates);
    if (c_normed.requires_grad()) accumulate_grad(c_normed, dc);
  });
}

// One row of a GRU step: out = r, z, n with r, z = sigmoid(x + hh), n = tanh(x_n + r hh_n), by
// the kernel table's vectorized functions (out may be x: gru_sequence works in place).
static void gru_row_rzn(const KernelTable& k, const float* x, const float* hh, float* out, int64_t H) {
  for (int64_t j = 0; j < 2 * H; ++j) out[j] = x[j] + hh[j];
  k.sigmoid(out, out, 2 * H);                                                 // r, z
  for (int64_t j = 0; j < H; ++j) out[2 * H + j] = x[2 * H + j] + out[j] * hh[2 * H + j];
  k.tanh(out + 2 * H, out + 2 * H, H);                                        // n
}

// r, z, n of every row -> [B, 3H] (as lstm_ifg).
static Tensor gru_rzn(const Tensor& X, const Tensor& Hh, int64_t B, int64_t H) {
  const KernelTable& k = kernels();
  Tensor a = Tensor::empty({B, 3 * H});
  for (int64_t b = 0; b < B; ++b) gru_row_rzn(k, X.data() + b * 3 * H, Hh.data() + b * 3 * H, a.data() + b * 3 * H, H);
  return a;
}

Tensor gru_cell(const Tensor& gx, const Tensor& gh, const Tensor& h_prev) {
  check_state_pair("gru_cell", gx, 3, h_prev);
  NL_CHECK(gh.shape() == gx.shape(), "gru_cell: gx and gh must have the same shape, got ", gx.shape(), " and ",
           gh.shape());
  const int64_t B = h_prev.size(0), H = h_prev.size(1);
  Tensor X = gx.detach().contiguous(), Hh = gh.detach().contiguous(), P = h_prev.detach().contiguous();
  Tensor h = Tensor::empty({B, H});
  {
    const Tensor A = gru_rzn(X, Hh, B, H);
    const float *pa = A.data(), *pp = P.data();
    float* out = h.data();
    for (int64_t b = 0; b < B; ++b) {
      const float* a = pa + b * 3 * H;  // r, z, n
      for (int64_t j = 0; j < H; ++j) out[b * H + j] = (1.0f - a[H + j]) * a[2 * H + j] + a[H + j] * pp[b * H + j];
    }
  }
  return record(h, "gru_cell", {gx, gh, h_prev}, [gx, gh, h_prev, X, Hh, P, B, H](const Tensor& grad) {
    Tensor dh = grad.contiguous();
    Tensor dgx = Tensor::empty({B, 3 * H}), dgh = Tensor::empty({B, 3 * H}), dprev = Tensor::empty({B, H});
    const Tensor A = gru_rzn(X, Hh, B, H);
    const float *pa = A.data(), *ph = Hh.data(), *pp = P.data(), *pd = dh.data();
    for (int64_t b = 0; b < B; ++b) {
      const float *a = pa + b * 3 * H, *hh = ph + b * 3 * H;
      float *dx = dgx.data() + b * 3 * H, *dhh = dgh.data() + b * 3 * H;
      for (int64_t j = 0; j < H; ++j) {
        const float r = a[j], z = a[H + j], n = a[2 * H + j];
        const float d = pd[b * H + j];
        const float dn_pre = d * (1.0f - z) * (1.0f - n * n);           // through n = tanh(.)
        const float dz_pre = d * (pp[b * H + j] - n) * z * (1.0f - z);  // through z = sigmoid(.)
        const float dr_pre = dn_pre * hh[2 * H + j] * r * (1.0f - r);   // through r * gh_n
        dx[j] = dhh[j] = dr_pre;
        dx[H + j] = dhh[H + j] = dz_pre;
        dx[2 * H + j] = dn_pre;
        dhh[2 * H + j] = dn_pre * r;
        dprev.data()[b * H + j] = d * z;
      }
    }
    if (gx.requires_grad()) accumulate_grad(gx, dgx);
    if (gh.requires_grad()) accumulate_grad(gh, dgh);
    if (h_prev.requires_grad()) accumulate_grad(h_prev, dprev);
  });
}

// ---- whole-sequence cells (norm none): hand-written backprop through time ----
//
// Layout: every buffer is batch-major like x and y, [B, T, width], so step t of batch row b
// is row b*T + t and "step t of all rows" is a strided matrix (leading dimension T * width)
// that sgemm reads and writes in place. hp[b, t] = h_{t-1} (zero at t = 0) is kept beside
// y so that dW_hh = dG^T hp is one GEMM over all B*T rows.
// step_weights_t: the per-step product h_{t-1} W_hh^T has only B rows, so gemm_raw runs it
// without packing when W_hh^T is stored as it is read (core/kernels/gemm_few_rows.hpp):
// W_hh is transposed once per sequence instead of repacked by OpenBLAS at every step. The
// backward's dG_t W_hh reads W_hh as stored already.

namespace {

struct SeqDims {
  int64_t B, T, D, H;
};

SeqDims check_sequence(const char* op, int64_t gates, const Tensor& x, const Tensor& w_ih, const Tensor& w_hh,
                       const Tensor& b_ih, const Tensor& b_hh) {
  NL_CHECK(x.dim() == 3 && w_ih.dim() == 2 && w_hh.dim() == 2 && w_ih.size(1) == x.size(2) &&
               w_hh.size(0) == gates * w_hh.size(1) && w_ih.size(0) == w_hh.size(0) && b_ih.dim() == 1 &&
               b_hh.dim() == 1 && b_ih.size(0) == w_hh.size(0) && b_hh.size(0) == w_hh.size(0),
           op, ": expected x [B, T, D], weight_ih [", gates, "H, D], weight_hh [", gates, "H, H], biases [", gates,
           "H]; got ", x.shape(), ", ", w_ih.shape(), ", ", w_hh.shape(), ", ", b_ih.shape(), ", ", b_hh.shape());
  return {x.size(0), x.size(1), x.size(2), w_hh.size(1)};
}

// out[b, t, :] = bias for every row, the starting value of a GEMM with beta = 1.
void fill_rows(float* out, const float* bias, int64_t rows, int64_t width) {
  for (int64_t r = 0; r < rows; ++r) std::copy(bias, bias + width, out + r * width);
}

// Column sums of a [rows, width] matrix (a bias gradient), in a fixed order.
Tensor column_sums(const float* m, int64_t rows, int64_t width) {
  Tensor out = Tensor::zeros({width});
  float* o = out.data();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < width; ++j) o[j] += m[r * width + j];
  return out;
}

// The shared end of both backward passes: from the gate gradients of all steps, the input and
// weight gradients as one GEMM each. dgx [B*T, G*H] (w.r.t. W_ih x + b_ih), dgh the same
// w.r.t. W_hh h + b_hh (the LSTM passes dgx twice: its two biases see the same gradient).
void finish_sequence_backward(const SeqDims& s, int64_t G, const float* dgx, const float* dgh, const Tensor& X,
                              const Tensor& Wih, const Tensor& hp, const Tensor& x, const Tensor& w_ih,
                              const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh) {
  const int64_t rows = s.B * s.T, GH = G * s.H;
  if (x.requires_grad()) {  // dX = dgx W_ih
    Tensor dx = Tensor::empty({s.B, s.T, s.D});
    gemm_raw(false, false, rows, s.D, GH, dgx, GH, Wih.data(), s.D, 0.0f, dx.data(), s.D);
    accumulate_grad(x, dx);
  }
  if (w_ih.requires_grad()) {  // dW_ih = dgx^T X
    Tensor dw = Tensor::empty({GH, s.D});
    gemm_raw(true, false, GH, s.D, rows, dgx, GH, X.data(), s.D, 0.0f, dw.data(), s.D);
    accumulate_grad(w_ih, dw);
  }
  if (w_hh.requires_grad()) {  // dW_hh = dgh^T hp: every step at once
    Tensor dw = Tensor::empty({GH, s.H});
    gemm_raw(true, false, GH, s.H, rows, dgh, GH, hp.data(), s.H, 0.0f, dw.data(), s.H);
    accumulate_grad(w_hh, dw);
  }
  if (b_ih.requires_grad()) accumulate_grad(b_ih, column_sums(dgx, rows, GH));
  if (b_hh.requires_grad()) accumulate_grad(b_hh, column_sums(dgh, rows, GH));
}

}  // namespace

Tensor lstm_sequence(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                     const Tensor& b_hh) {
  const SeqDims s = check_sequence("lstm_sequence", 4, x, w_ih, w_hh, b_ih, b_hh);
  const int64_t B = s.B, T = s.T, D = s.D, H = s.H, G4 = 4 * H;
  const KernelTable& k = kernels();
  Tensor X = x.detach().contiguous(), Wih = w_ih.detach().contiguous(), Whh = w_hh.detach().contiguous();
  // act: the gates of every step, first pre-activations, then (in place) i f g o themselves.
  Tensor act = Tensor::empty({B, T, G4});
  Tensor c = Tensor::empty({B, T, H}), tc = Tensor::empty({B, T, H});  // c_t and tanh(c_t)
  Tensor y = Tensor::empty({B, T, H}), hp = Tensor::empty({B, T, H});  // h_t and h_{t-1}
  {
    Tensor bias = add(b_ih.detach(), b_hh.detach()).contiguous();  // both biases ride in one fill
    fill_rows(act.data(), bias.data(), B * T, G4);
  }
  float *pa = act.data(), *pc = c.data(), *ptc = tc.data(), *py = y.data(), *php = hp.data();
  gemm_raw(false, true, B * T, G4, D, X.data(), D, Wih.data(), D, 1.0f, pa, G4);  // + W_ih x, all steps
  const Tensor WhhT = Whh.transpose(0, 1).contiguous();  // [H, 4H]: step_weights_t above
  for (int64_t t = 0; t < T; ++t) {
    // + W_hh h_{t-1} for the B rows of step t (h_{-1} = 0: nothing to add at t = 0).
    if (t > 0) gemm_raw(false, false, B, G4, H, php + t * H, T * H, WhhT.data(), G4, 1.0f, pa + t * G4, T * G4);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t r = b * T + t;
      float* a = pa + r * G4;
      k.sigmoid(a, a, 2 * H);              // i, f
      k.tanh(a + 2 * H, a + 2 * H, H);     // g
      k.sigmoid(a + 3 * H, a + 3 * H, H);  // o
      float *ct = pc + r * H, *tct = ptc + r * H, *h = py + r * H;
      const float* cprev = t > 0 ? ct - H : nullptr;
      for (int64_t j = 0; j < H; ++j) ct[j] = (cprev ? a[H + j] * cprev[j] : 0.0f) + a[j] * a[2 * H + j];
      k.tanh(ct, tct, H);
      for (int64_t j = 0; j < H; ++j) h[j] = a[3 * H + j] * tct[j];
      float* hnext = php + r * H;  // hp[b, t] = h_{t-1}
      if (t == 0) std::fill(hnext, hnext + H, 0.0f);
      if (t + 1 < T) std::copy(h, h + H, hnext + H);
    }
  }
  return record(y, "lstm_sequence", {x, w_ih, w_hh, b_ih, b_hh},
                [x, w_ih, w_hh, b_ih, b_hh, s, X, Wih, Whh, act, c, tc, hp](const Tensor& grad) {
    const int64_t B = s.B, T = s.T, H = s.H, G4 = 4 * H;
    Tensor dy = grad.contiguous();
    Tensor dgates = Tensor::empty({B, T, G4});
    // dh, dc: gradients flowing into h_t and c_t from step t + 1 (zero after the last step).
    Tensor dh = Tensor::zeros({B, H}), dc = Tensor::zeros({B, H});
    const float *pa = act.data(), *pc = c.data(), *ptc = tc.data(), *pdy = dy.data();
    float *pdg = dgates.data(), *pdh = dh.data(), *pdc = dc.data();
    for (int64_t t = T - 1; t >= 0; --t) {
      for (int64_t b = 0; b < B; ++b) {
        const int64_t r = b * T + t;
        const float *a = pa + r * G4, *tct = ptc + r * H, *dyt = pdy + r * H;
        const float* cprev = t > 0 ? pc + (r - 1) * H : nullptr;
        float *dg = pdg + r * G4, *dhb = pdh + b * H, *dcb = pdc + b * H;
        for (int64_t j = 0; j < H; ++j) {
          const float i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
          const float dht = dyt[j] + dhb[j];                             // from y_t and from step t + 1
          const float dct = dht * o * (1.0f - tct[j] * tct[j]) + dcb[j];  // through h = o tanh(c), plus carry
          const float cp = cprev ? cprev[j] : 0.0f;
          dg[j] = dct * g * i * (1.0f - i);              // d/d(i pre-activation)
          dg[H + j] = dct * cp * f * (1.0f - f);         // d/d(f pre-activation)
          dg[2 * H + j] = dct * i * (1.0f - g * g);      // d/d(g pre-activation)
          dg[3 * H + j] = dht * tct[j] * o * (1.0f - o); // d/d(o pre-activation)
          dcb[j] = dct * f;                              // into c_{t-1}
        }
      }
      // dh_{t-1} = dG_t W_hh: the only per-step GEMM of the backward pass.
      if (t > 0) gemm_raw(false, false, B, H, G4, pdg + t * G4, T * G4, Whh.data(), H, 0.0f, pdh, H);
    }
    finish_sequence_backward(s, 4, pdg, pdg, X, Wih, hp, x, w_ih, w_hh, b_ih, b_hh);
  });
}

Tensor gru_sequence(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                    const Tensor& b_hh) {
  const SeqDims s = check_sequence("gru_sequence", 3, x, w_ih, w_hh, b_ih, b_hh);
  const int64_t B = s.B, T = s.T, D = s.D, H = s.H, G3 = 3 * H;
  const KernelTable& k = kernels();
  Tensor X = x.detach().contiguous(), Wih = w_ih.detach().contiguous(), Whh = w_hh.detach().contiguous();
  // act: W_ih x + b_ih of every step, then (in place) r, z, n. gh: W_hh h_{t-1} + b_hh (its
  // n part is needed in backward, because the reset gate multiplies it).
  Tensor act = Tensor::empty({B, T, G3}), gh = Tensor::empty({B, T, G3});
  Tensor y = Tensor::empty({B, T, H}), hp = Tensor::empty({B, T, H});
  {
    Tensor bi = b_ih.detach().contiguous(), bh = b_hh.detach().contiguous();
    fill_rows(act.data(), bi.data(), B * T, G3);
    fill_rows(gh.data(), bh.data(), B * T, G3);
  }
  float *pa = act.data(), *pgh = gh.data(), *py = y.data(), *php = hp.data();
  gemm_raw(false, true, B * T, G3, D, X.data(), D, Wih.data(), D, 1.0f, pa, G3);
  const Tensor WhhT = Whh.transpose(0, 1).contiguous();  // [H, 3H], as in lstm_sequence
  for (int64_t t = 0; t < T; ++t) {
    if (t > 0) gemm_raw(false, false, B, G3, H, php + t * H, T * H, WhhT.data(), G3, 1.0f, pgh + t * G3, T * G3);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t r = b * T + t;
      float *a = pa + r * G3, *h = py + r * H, *hprev = php + r * H;
      const float* ghr = pgh + r * G3;
      if (t == 0) std::fill(hprev, hprev + H, 0.0f);
      gru_row_rzn(k, a, ghr, a, H);  // r, z, n in place
      for (int64_t j = 0; j < H; ++j) h[j] = (1.0f - a[H + j]) * a[2 * H + j] + a[H + j] * hprev[j];
      if (t + 1 < T) std::copy(h, h + H, hprev + H);
    }
  }
  return record(y, "gru_sequence", {x, w_ih, w_hh, b_ih, b_hh},
                [x, w_ih, w_hh, b_ih, b_hh, s, X, Wih, Whh, act, gh, hp](const Tensor& grad) {
    const int64_t B = s.B, T = s.T, H = s.H, G3 = 3 * H;
    Tensor dy = grad.contiguous();
    Tensor dgx = Tensor::empty({B, T, G3}), dgh = Tensor::empty({B, T, G3});
    Tensor dh = Tensor::zeros({B, H});  // into h_t from step t + 1
    const float *pa = act.data(), *pgh = gh.data(), *php = hp.data(), *pdy = dy.data();
    float *pdx = dgx.data(), *pdgh = dgh.data(), *pdh = dh.data();
    for (int64_t t = T - 1; t >= 0; --t) {
      for (int64_t b = 0; b < B; ++b) {
        const int64_t r = b * T + t;
        const float *a = pa + r * G3, *ghr = pgh + r * G3, *hprev = php + r * H, *dyt = pdy + r * H;
        float *dx = pdx + r * G3, *dhh = pdgh + r * G3, *dhb = pdh + b * H;
        for (int64_t j = 0; j < H; ++j) {
          const float rr = a[j], z = a[H + j], n = a[2 * H + j];
          const float d = dyt[j] + dhb[j];
          const float dn_pre = d * (1.0f - z) * (1.0f - n * n);          // through n = tanh(.)
          const float dz_pre = d * (hprev[j] - n) * z * (1.0f - z);      // through z = sigmoid(.)
          const float dr_pre = dn_pre * ghr[2 * H + j] * rr * (1.0f - rr);  // through r * gh_n
          dx[j] = dhh[j] = dr_pre;
          dx[H + j] = dhh[H + j] = dz_pre;
          dx[2 * H + j] = dn_pre;
          dhh[2 * H + j] = dn_pre * rr;
          dhb[j] = d * z;  // the direct path into h_{t-1}; the GEMM below adds the rest
        }
      }
      if (t > 0) gemm_raw(false, false, B, H, G3, pdgh + t * G3, T * G3, Whh.data(), H, 1.0f, pdh, H);
    }
    finish_sequence_backward(s, 3, pdx, pdgh, X, Wih, hp, x, w_ih, w_hh, b_ih, b_hh);
  });
}

// ---- RecurrentBase ----

RecurrentBase::RecurrentBase(const char* kind, int64_t gates, int64_t in, int64_t hidden,
                             const RecurrentOptions& opt, Generator& gen)
    : input_size(in), hidden_size(hidden), options(opt), kind_(kind) {
  NL_CHECK(in > 0 && hidden > 0, kind, ": input_size and hidden_size must be positive, got ", in, " and ", hidden);
  const auto names = recurrent_norm_names();
  NL_CHECK(std::find(names.begin(), names.end(), opt.norm) != names.end(), kind, ": unknown cell norm '", opt.norm,
           "'; valid: none, ln, rms, bn");
  // PyTorch's init: every weight and bias U(-1/sqrt(H), 1/sqrt(H)).
  const float k = 1.0f / std::sqrt(static_cast<float>(hidden));
  weight_ih = Tensor::empty({gates * hidden, in});
  weight_hh = Tensor::empty({gates * hidden, hidden});
  bias_ih = Tensor::empty({gates * hidden});
  bias_hh = Tensor::empty({gates * hidden});
  for (Tensor* t : {&weight_ih, &weight_hh, &bias_ih, &bias_hh}) {
    uniform_(*t, -k, k, gen);
  }
  register_parameter("weight_ih", weight_ih);
  register_parameter("weight_hh", weight_hh);
  register_parameter("bias_ih", bias_ih);
  register_parameter("bias_hh", bias_hh);

  if (opt.norm == "ln" || opt.norm == "rms") {
    NormOptions n;
    n.name = opt.norm;
    n.eps = opt.eps;
    norm_x_ = register_module("norm_x", make_norm(n, {gates * hidden}, NormSite::tokens));
    norm_h_ = register_module("norm_h", make_norm(n, {gates * hidden}, NormSite::tokens));
  } else if (opt.norm == "bn") {
    NL_CHECK(opt.max_steps > 0, kind, ": bn needs max_steps > 0, got ", opt.max_steps);
    RecurrentBatchNormOptions b;
    b.eps = opt.eps;
    b.momentum = opt.momentum;
    b.stat_batch = opt.stat_batch;
    b.gamma_init = opt.bn_gamma_init;
    bn_x_ = register_module("norm_x", std::make_shared<RecurrentBatchNorm>(gates * hidden, opt.max_steps, b));
    bn_h_ = register_module("norm_h", std::make_shared<RecurrentBatchNorm>(gates * hidden, opt.max_steps, b));
  }
}

void RecurrentBase::add_cell_norm() {
  if (options.norm == "ln" || options.norm == "rms") {
    NormOptions n;
    n.name = options.norm;
    n.eps = options.eps;
    norm_c_ = register_module("norm_c", make_norm(n, {hidden_size}, NormSite::tokens));
  } else if (options.norm == "bn") {
    RecurrentBatchNormOptions b;
    b.eps = options.eps;
    b.momentum = options.momentum;
    b.stat_batch = options.stat_batch;
    b.gamma_init = options.bn_gamma_init;
    bn_c_ = register_module("norm_c", std::make_shared<RecurrentBatchNorm>(hidden_size, options.max_steps, b));
  }
}

void RecurrentBase::check_input(const Tensor& x) const {
  NL_CHECK(x.dim() == 3 && x.size(2) == input_size && x.size(0) > 0 && x.size(1) > 0, name(),
           ": expected input [B, T, ", input_size, "] (batch first), got ", x.shape());
}

Tensor RecurrentBase::project_inputs(const Tensor& x) {
  check_input(x);
  if (options.norm == "none") return linear(x, weight_ih, bias_ih);  // the bias rides in the matmul
  Tensor wx = linear(x, weight_ih);                                  // [B, T, G*H]
  if (norm_x_) return add(norm_x_->forward(wx), bias_ih);            // per-token norm: all steps at once
  return wx;                                                         // bn: per step, in step_input
}

Tensor RecurrentBase::step_input(const Tensor& projected, int64_t t) {
  Tensor gx = projected.select(1, t);
  if (bn_x_) return add(bn_x_->forward(gx.contiguous(), t), bias_ih);
  return gx;
}

Tensor RecurrentBase::step_hidden(const Tensor& h, int64_t t) {
  if (options.norm == "none") return linear(h, weight_hh, bias_hh);
  Tensor wh = linear(h, weight_hh);  // [B, G*H]
  // The per-token norms get [B, 1, G*H], the sequence layout they are built for.
  if (norm_h_) return add(norm_h_->forward(wh.unsqueeze(1)).squeeze(1), bias_hh);
  return add(bn_h_->forward(wh, t), bias_hh);
}

Tensor RecurrentBase::norm_cell(const Tensor& c, int64_t t) {
  if (norm_c_) return norm_c_->forward(c.unsqueeze(1)).squeeze(1);
  if (bn_c_) return bn_c_->forward(c, t);
  return c;
}

std::string RecurrentBase::describe() const {
  return fmt::format("{}({}, {}{})", kind_, input_size, hidden_size,
                     options.norm == "none" ? "" : ", norm " + options.norm);
}

// ---- LSTM ----

LSTM::LSTM(int64_t in, int64_t hidden, const RecurrentOptions& opt, Generator& gen)
    : RecurrentBase("LSTM", 4, in, hidden, opt, gen) {
  add_cell_norm();
}

Tensor LSTM::forward(const Tensor& x) {
  if (options.norm == "none") {
    check_input(x);
    return lstm_sequence(x, weight_ih, weight_hh, bias_ih, bias_hh);
  }
  Tensor projected = project_inputs(x);  // [B, T, 4H]
  const int64_t B = x.size(0), T = x.size(1);
  Tensor h = Tensor::zeros({B, hidden_size}), c = Tensor::zeros({B, hidden_size});
  std::vector<Tensor> outputs;
  outputs.reserve(T);
  for (int64_t t = 0; t < T; ++t) {
    Tensor gates = add(step_input(projected, t), step_hidden(h, t));
    c = lstm_cell_state(gates, c);
    h = lstm_cell_output(gates, norm_cell(c, t));
    outputs.push_back(h.unsqueeze(1));
  }
  return concat(outputs, 1);  // [B, T, H]
}

// ---- GRU ----

GRU::GRU(int64_t in, int64_t hidden, const RecurrentOptions& opt, Generator& gen)
    : RecurrentBase("GRU", 3, in, hidden, opt, gen) {}

Tensor GRU::forward(const Tensor& x) {
  if (options.norm == "none") {
    check_input(x);
    return gru_sequence(x, weight_ih, weight_hh, bias_ih, bias_hh);
  }
  Tensor projected = project_inputs(x);  // [B, T, 3H]
  const int64_t B = x.size(0), T = x.size(1);
  Tensor h = Tensor::zeros({B, hidden_size});
  std::vector<Tensor> outputs;
  outputs.reserve(T);
  for (int64_t t = 0; t < T; ++t) {
    h = gru_cell(step_input(projected, t), step_hidden(h, t), h);
    outputs.push_back(h.unsqueeze(1));
  }
  return concat(outputs, 1);  // [B, T, H]
}

}  // namespace nl
