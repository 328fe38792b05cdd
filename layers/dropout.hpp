// normlab layers: Dropout. Inverted dropout (PyTorch's): in training, each element is zeroed
// with probability p and survivors are scaled by 1/(1-p), so eval mode is the identity and
// needs no rescaling. The mask comes from a Generator the caller owns (a model keeps one,
// so a seeded run drops the same units every time and a checkpoint can save its state).
#pragma once

#include "core/random.hpp"
#include "layers/module.hpp"

namespace nl {

class Dropout : public Module {
 public:
  // gen must outlive the module.
  Dropout(float p, Generator& gen);
  Tensor forward(const Tensor& x) override;  // any shape; identity in eval mode or when p == 0
  std::string name() const override;
  float p;

 private:
  Generator* gen_;
};

}  // namespace nl
