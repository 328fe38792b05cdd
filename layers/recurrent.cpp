// normlab layers: LSTM and GRU. See recurrent.hpp for the equations.
#include "layers/recurrent.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/autograd.hpp"
#include "layers/norm/factory.hpp"
#include "layers/norm/recurrent_batch_norm.hpp"

namespace nl {

std::vector<std::string> recurrent_norm_names() { return {"none", "ln", "rms", "bn"}; }

static inline float sigmoidf(float v) { return 1.0f / (1.0f + std::exp(-v)); }

static void check_state_pair(const char* op, const Tensor& gates, int64_t g, const Tensor& state) {
  NL_CHECK(state.dim() == 2 && gates.dim() == 2 && gates.size(0) == state.size(0) &&
               gates.size(1) == g * state.size(1),
           op, ": expected gates [B, ", g, "H] and state [B, H], got ", gates.shape(), " and ", state.shape());
}

// ---- fused pointwise steps; backward recomputes the gate activations from the inputs ----

Tensor lstm_cell_state(const Tensor& gates, const Tensor& c_prev) {
  check_state_pair("lstm_cell_state", gates, 4, c_prev);
  const int64_t B = c_prev.size(0), H = c_prev.size(1);
  Tensor G = gates.detach().contiguous(), C = c_prev.detach().contiguous();
  Tensor c = Tensor::empty({B, H});
  const float *pg = G.data(), *pc = C.data();
  float* out = c.data();
  for (int64_t b = 0; b < B; ++b) {
    const float* g = pg + b * 4 * H;
    for (int64_t j = 0; j < H; ++j)
      out[b * H + j] = sigmoidf(g[H + j]) * pc[b * H + j] + sigmoidf(g[j]) * std::tanh(g[2 * H + j]);
  }
  return record(c, "lstm_cell_state", {gates, c_prev}, [gates, c_prev, G, C, B, H](const Tensor& grad) {
    Tensor dc = grad.contiguous();
    Tensor dgates = Tensor::zeros({B, 4 * H}), dprev = Tensor::empty({B, H});
    const float *pg = G.data(), *pc = C.data(), *pd = dc.data();
    float *dg = dgates.data(), *dp = dprev.data();
    for (int64_t b = 0; b < B; ++b) {
      const float* g = pg + b * 4 * H;
      float* d = dg + b * 4 * H;
      for (int64_t j = 0; j < H; ++j) {
        const float i = sigmoidf(g[j]), f = sigmoidf(g[H + j]), gg = std::tanh(g[2 * H + j]);
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

Tensor lstm_cell_output(const Tensor& gates, const Tensor& c_normed) {
  check_state_pair("lstm_cell_output", gates, 4, c_normed);
  const int64_t B = c_normed.size(0), H = c_normed.size(1);
  Tensor G = gates.detach().contiguous(), C = c_normed.detach().contiguous();
  Tensor h = Tensor::empty({B, H});
  const float *pg = G.data(), *pc = C.data();
  float* out = h.data();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < H; ++j) out[b * H + j] = sigmoidf(pg[b * 4 * H + 3 * H + j]) * std::tanh(pc[b * H + j]);
  return record(h, "lstm_cell_output", {gates, c_normed}, [gates, c_normed, G, C, B, H](const Tensor& grad) {
    Tensor dh = grad.contiguous();
    Tensor dgates = Tensor::zeros({B, 4 * H}), dc = Tensor::empty({B, H});
    const float *pg = G.data(), *pc = C.data(), *pd = dh.data();
    float *dg = dgates.data(), *dcp = dc.data();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < H; ++j) {
        const float o = sigmoidf(pg[b * 4 * H + 3 * H + j]), tc = std::tanh(pc[b * H + j]), d = pd[b * H + j];
        dg[b * 4 * H + 3 * H + j] = d * tc * o * (1.0f - o);
        dcp[b * H + j] = d * o * (1.0f - tc * tc);
      }
    if (gates.requires_grad()) accumulate_grad(gates, dgates);
    if (c_normed.requires_grad()) accumulate_grad(c_normed, dc);
  });
}

Tensor gru_cell(const Tensor& gx, const Tensor& gh, const Tensor& h_prev) {
  check_state_pair("gru_cell", gx, 3, h_prev);
  NL_CHECK(gh.shape() == gx.shape(), "gru_cell: gx and gh must have the same shape, got ", gx.shape(), " and ",
           gh.shape());
  const int64_t B = h_prev.size(0), H = h_prev.size(1);
  Tensor X = gx.detach().contiguous(), Hh = gh.detach().contiguous(), P = h_prev.detach().contiguous();
  Tensor h = Tensor::empty({B, H});
  {
    const float *px = X.data(), *ph = Hh.data(), *pp = P.data();
    float* out = h.data();
    for (int64_t b = 0; b < B; ++b) {
      const float *x = px + b * 3 * H, *hh = ph + b * 3 * H;
      for (int64_t j = 0; j < H; ++j) {
        const float r = sigmoidf(x[j] + hh[j]), z = sigmoidf(x[H + j] + hh[H + j]);
        const float n = std::tanh(x[2 * H + j] + r * hh[2 * H + j]);
        out[b * H + j] = (1.0f - z) * n + z * pp[b * H + j];
      }
    }
  }
  return record(h, "gru_cell", {gx, gh, h_prev}, [gx, gh, h_prev, X, Hh, P, B, H](const Tensor& grad) {
    Tensor dh = grad.contiguous();
    Tensor dgx = Tensor::empty({B, 3 * H}), dgh = Tensor::empty({B, 3 * H}), dprev = Tensor::empty({B, H});
    const float *px = X.data(), *ph = Hh.data(), *pp = P.data(), *pd = dh.data();
    for (int64_t b = 0; b < B; ++b) {
      const float *x = px + b * 3 * H, *hh = ph + b * 3 * H;
      float *dx = dgx.data() + b * 3 * H, *dhh = dgh.data() + b * 3 * H;
      for (int64_t j = 0; j < H; ++j) {
        const float r = sigmoidf(x[j] + hh[j]), z = sigmoidf(x[H + j] + hh[H + j]);
        const float n = std::tanh(x[2 * H + j] + r * hh[2 * H + j]);
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
    b.gamma_init = options.bn_gamma_init;
    bn_c_ = register_module("norm_c", std::make_shared<RecurrentBatchNorm>(hidden_size, options.max_steps, b));
  }
}

Tensor RecurrentBase::project_inputs(const Tensor& x) {
  NL_CHECK(x.dim() == 3 && x.size(2) == input_size && x.size(0) > 0 && x.size(1) > 0, name(),
           ": expected input [B, T, ", input_size, "] (batch first), got ", x.shape());
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
