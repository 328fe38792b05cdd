// normlab core: seeded random numbers and initialisers. See random.hpp.
#include "core/random.hpp"

#include <cmath>

namespace nl {

static uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void Generator::manual_seed(uint64_t seed) {
  uint64_t x = seed;
  for (auto& s : s_) s = splitmix64(x);
  has_spare_ = false;
  spare_ = 0.0f;
}

uint64_t Generator::next_u64() {  // xoshiro256**
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

float Generator::uniform() { return static_cast<float>(next_u64() >> 40) * (1.0f / 16777216.0f); }  // 24 bits
float Generator::uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }

float Generator::normal(float mean, float stddev) {
  if (has_spare_) {
    has_spare_ = false;
    return mean + stddev * spare_;
  }
  // Box-Muller in double; u1 in (0, 1] so log(u1) is finite.
  const double u1 = (static_cast<double>(next_u64() >> 11) + 1.0) * (1.0 / 9007199254740992.0);
  const double u2 = static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0);
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * M_PI * u2;
  spare_ = static_cast<float>(r * std::sin(theta));
  has_spare_ = true;
  return mean + stddev * static_cast<float>(r * std::cos(theta));
}

uint64_t Generator::below(uint64_t n) {
  // Rejection sampling: unbiased for any n.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = next_u64();
  while (x >= limit);
  return x % n;
}

Generator::State Generator::state() const { return {{s_[0], s_[1], s_[2], s_[3]}, has_spare_, spare_}; }
void Generator::set_state(const State& st) {
  for (int i = 0; i < 4; ++i) s_[i] = st.s[i];
  has_spare_ = st.has_spare;
  spare_ = st.spare;
}

Generator& default_generator() {
  static Generator gen(0);
  return gen;
}
void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

Tensor randn(const Shape& shape, Generator& gen) {
  Tensor t = Tensor::empty(shape);
  normal_(t, 0.0f, 1.0f, gen);
  return t;
}

Tensor rand(const Shape& shape, Generator& gen) {
  Tensor t = Tensor::empty(shape);
  uniform_(t, 0.0f, 1.0f, gen);
  return t;
}

void uniform_(Tensor& t, float lo, float hi, Generator& gen) {
  NL_CHECK(t.is_contiguous(), "uniform_: tensor must be contiguous");
  float* p = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = gen.uniform(lo, hi);
}

void normal_(Tensor& t, float mean, float stddev, Generator& gen) {
  NL_CHECK(t.is_contiguous(), "normal_: tensor must be contiguous");
  float* p = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = gen.normal(mean, stddev);
}

static int64_t receptive_field(const Tensor& t) {
  int64_t r = 1;
  for (int64_t d = 2; d < t.dim(); ++d) r *= t.size(d);
  return r;
}
int64_t fan_in(const Tensor& t) {
  NL_CHECK(t.dim() >= 2, "fan_in: needs a tensor of rank >= 2, got shape ", t.shape());
  return t.size(1) * receptive_field(t);
}
int64_t fan_out(const Tensor& t) {
  NL_CHECK(t.dim() >= 2, "fan_out: needs a tensor of rank >= 2, got shape ", t.shape());
  return t.size(0) * receptive_field(t);
}

// Gain of leaky_relu with slope a: sqrt(2 / (1 + a^2)) (He et al. 2015).
static float leaky_gain(float a) { return std::sqrt(2.0f / (1.0f + a * a)); }

void kaiming_uniform_(Tensor& t, float a, Generator& gen) {
  const float bound = leaky_gain(a) * std::sqrt(3.0f / static_cast<float>(fan_in(t)));
  uniform_(t, -bound, bound, gen);
}
void kaiming_normal_(Tensor& t, float a, Generator& gen) {
  normal_(t, 0.0f, leaky_gain(a) / std::sqrt(static_cast<float>(fan_in(t))), gen);
}
void xavier_uniform_(Tensor& t, float gain, Generator& gen) {
  const float bound = gain * std::sqrt(6.0f / static_cast<float>(fan_in(t) + fan_out(t)));
  uniform_(t, -bound, bound, gen);
}
void xavier_normal_(Tensor& t, float gain, Generator& gen) {
  normal_(t, 0.0f, gain * std::sqrt(2.0f / static_cast<float>(fan_in(t) + fan_out(t))), gen);
}

}  // namespace nl
