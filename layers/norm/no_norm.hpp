// normlab layers: the "none" norm (and WeightNorm's place without mean-only BN).
//
//   y = x        backward: dx = dy
//
// An Identity, but a norm layer all the same: it reports its input and output to a
// NormObserver like every norm, so `train --diagnostics` watches the same place in a network
// with and without a norm (the input of each activation: the BatchNorm paper's Fig. 1b,c draws
// one sigmoid's input over training, without and with BN). No observer: one pointer test.
#pragma once

#include <string>

#include "layers/activation.hpp"

namespace nl {

class NoNorm : public Identity {
 public:
  Tensor forward(const Tensor& x_in) override {
    const Tensor x = report_norm_input(x_in);
    return report_norm_output(x);
  }
  std::string name() const override { return "NoNorm"; }
};

}  // namespace nl
