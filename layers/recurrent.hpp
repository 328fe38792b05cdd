// normlab layers: LSTM and GRU over batch-first sequences [B, T, D] -> hidden states [B, T, H],
// with PyTorch's gate layout, equations and parameter names (weight_ih, weight_hh, bias_ih,
// bias_hh), so nn.LSTM / nn.GRU weights copy over unchanged. Initial state is zero.
//
// LSTM, gates stacked i, f, g, o along the 4H rows of the weights:
//   gates = Nx(W_ih x_t) + b_ih + Nh(W_hh h_{t-1}) + b_hh        [B, 4H]
//   i, f, o = sigmoid(.)   g = tanh(.)
//   c_t = f * c_{t-1} + i * g
//   h_t = o * tanh(Nc(c_t))
// GRU, gates stacked r, z, n along the 3H rows:
//   gx = Nx(W_ih x_t) + b_ih      gh = Nh(W_hh h_{t-1}) + b_hh   [B, 3H]
//   r = sigmoid(gx_r + gh_r)      z = sigmoid(gx_z + gh_z)
//   n = tanh(gx_n + r * gh_n)     (the reset gate scales W_hn h + b_hn, as in PyTorch)
//   h_t = (1 - z) * n + z * h_{t-1}
//
// The norm inside the cell, by name (N = identity for none, which is exactly PyTorch):
//   none  plain cell
//   ln    LayerNorm-LSTM of Ba et al. 2016: LN over the 4H (3H) gate pre-activations of
//         W_x x and of W_h h separately (so the bias is applied after, not normalized away),
//         and (LSTM) LN on c_t before the tanh; the carried c_t itself is not normalized.
//   rms   the same with RMSNorm.
//   bn    recurrent BatchNorm of Cooijmans et al. 2016: BatchNorm on W_x x and on W_h h
//         with separate statistics per time step (RecurrentBatchNorm, gamma 0.1), and
//         (LSTM) on c_t before the tanh.
// The GRU has no cell state, so its variants normalize W_x x and W_h h only.
//
// Speed. norm none (the PyTorch cell) runs as one whole-sequence op, lstm_sequence /
// gru_sequence, with backprop through time written by hand:
//   forward   gates of all T steps from one input GEMM [B*T, D] x [D, G*H]; then per step one
//             [B, H] x [H, G*H] GEMM into a preallocated gate buffer and the pointwise cell
//             (SIMD sigmoid/tanh), keeping the activations for backward;
//   backward  per step (T-1 .. 0) the pointwise derivatives into dG and one [B, G*H] x
//             [G*H, H] GEMM for dh_{t-1}; then dW_hh, dW_ih and dX as one GEMM each over all
//             B*T rows, and the biases as column sums -- no per-step gradient tensors.
// The norm variants (ln, rms, bn) normalize the gate pre-activations per step, so they keep
// the composite path: one input projection, then per step a small matmul, the norm modules
// and the fused pointwise ops below (with autograd through each).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/random.hpp"
#include "layers/module.hpp"

namespace nl {

class RecurrentBatchNorm;

struct RecurrentOptions {
  std::string norm = "none";  // none | ln | rms | bn
  float eps = 1e-5f;          // ln, rms, bn
  float momentum = 0.1f;      // bn running statistics
  int64_t stat_batch = 0;     // bn: statistics over groups of this many sequences (0 = the batch)
  int64_t max_steps = 512;    // bn: steps with their own statistics (later steps share the last)
  float bn_gamma_init = 0.1f; // bn: Cooijmans et al.'s initial gamma
};

std::vector<std::string> recurrent_norm_names();  // none, ln, rms, bn

// The shared machinery: parameters, the norm modules and the input projection.
// `gates` is 4 for the LSTM, 3 for the GRU.
class RecurrentBase : public Module {
 public:
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;  // [G*H, D], [G*H, H], [G*H], [G*H]
  int64_t input_size, hidden_size;
  RecurrentOptions options;

 protected:
  RecurrentBase(const char* kind, int64_t gates, int64_t input_size, int64_t hidden_size,
                const RecurrentOptions& options, Generator& gen);
  void check_input(const Tensor& x) const;  // x must be [B, T, D]
  // Checks x is [B, T, D]; returns Nx(W_ih x) + b_ih for all steps when the norm allows
  // (none, ln, rms), else W_ih x without bias (bn normalizes it per step in step_input).
  Tensor project_inputs(const Tensor& x);
  Tensor step_input(const Tensor& projected, int64_t t);      // -> gx for step t, [B, G*H]
  Tensor step_hidden(const Tensor& h, int64_t t);             // -> Nh(W_hh h) + b_hh, [B, G*H]
  Tensor norm_cell(const Tensor& c, int64_t t);               // -> Nc(c) (LSTM only)
  void add_cell_norm();                                       // LSTM: registers Nc
  std::string describe() const;

  const char* kind_;
  std::shared_ptr<Module> norm_x_, norm_h_, norm_c_;          // ln / rms
  std::shared_ptr<RecurrentBatchNorm> bn_x_, bn_h_, bn_c_;    // bn
};

class LSTM : public RecurrentBase {
 public:
  LSTM(int64_t input_size, int64_t hidden_size, const RecurrentOptions& options = {},
       Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;  // [B, T, D] -> [B, T, H]
  std::string name() const override { return describe(); }
};

class GRU : public RecurrentBase {
 public:
  GRU(int64_t input_size, int64_t hidden_size, const RecurrentOptions& options = {},
      Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;  // [B, T, D] -> [B, T, H]
  std::string name() const override { return describe(); }
};

// The whole-sequence cells without norm (what LSTM/GRU use for norm none; exposed for their
// gradient checks). x [B, T, D], weights and biases as the members above -> h [B, T, H].
Tensor lstm_sequence(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                     const Tensor& b_hh);
Tensor gru_sequence(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                    const Tensor& b_hh);

// The fused pointwise steps of the norm variants (exposed for their gradient checks). gates are [B, 4H] (LSTM,
// i f g o) or [B, 3H] (GRU, r z n); states [B, H].
Tensor lstm_cell_state(const Tensor& gates, const Tensor& c_prev);  // f * c_prev + i * g
Tensor lstm_cell_output(const Tensor& gates, const Tensor& c_normed);  // o * tanh(c_normed)
Tensor gru_cell(const Tensor& gx, const Tensor& gh, const Tensor& h_prev);

}  // namespace nl
