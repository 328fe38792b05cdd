// normlab core: seeded random numbers. Same seed, same numbers, on every platform:
// the generator (SplitMix64 seeding a xoshiro256**) and the normal transform (Box-Muller)
// are written here instead of taken from <random>, whose distributions differ between
// standard libraries.
#pragma once

#include <cstdint>

#include "core/tensor.hpp"

namespace nl {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) { manual_seed(seed); }
  void manual_seed(uint64_t seed);
  uint64_t next_u64();
  float uniform();                        // [0, 1)
  float uniform(float lo, float hi);      // [lo, hi)
  float normal(float mean = 0.0f, float stddev = 1.0f);
  uint64_t below(uint64_t n);             // uniform integer in [0, n)

  // Full state, for checkpoints (resume must continue the same stream).
  struct State {
    uint64_t s[4];
    bool has_spare;
    float spare;
  };
  State state() const;
  void set_state(const State& st);

 private:
  uint64_t s_[4];
  bool has_spare_ = false;
  float spare_ = 0.0f;
};

Generator& default_generator();
void manual_seed(uint64_t seed);  // seeds default_generator()

// Fresh tensors.
Tensor randn(const Shape& shape, Generator& gen = default_generator());
Tensor rand(const Shape& shape, Generator& gen = default_generator());  // U[0,1)

// In-place initialisers (no autograd), PyTorch's conventions for fan_in/fan_out:
// fan_in = size(1) * prod(size(2:)), fan_out = size(0) * prod(size(2:)).
void uniform_(Tensor& t, float lo, float hi, Generator& gen = default_generator());
void normal_(Tensor& t, float mean, float stddev, Generator& gen = default_generator());
void kaiming_uniform_(Tensor& t, float a = 0.0f, Generator& gen = default_generator());  // leaky_relu gain
void kaiming_normal_(Tensor& t, float a = 0.0f, Generator& gen = default_generator());
void xavier_uniform_(Tensor& t, float gain = 1.0f, Generator& gen = default_generator());
void xavier_normal_(Tensor& t, float gain = 1.0f, Generator& gen = default_generator());
int64_t fan_in(const Tensor& t);
int64_t fan_out(const Tensor& t);

}  // namespace nl
