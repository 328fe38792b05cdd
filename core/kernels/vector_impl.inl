// normlab core: the vector type of this SIMD level and the loads and stores that the kernel
// families written with GCC vector types share (conv3x3_impl.inl, gemm_few_rows_impl.inl,
// pool_impl.inl). Included inside their anonymous namespace in nl::NL_SIMD_NS, so each level's
// translation unit gets its own copy at its own width. The "scalar" level uses SSE2 vectors
// of 4, which every x86-64 has.
//
// Expects: <immintrin.h>, <cstring> and <cstdint> included before it.
#if defined(__AVX512F__)
constexpr int kVec = 16;
#elif defined(__AVX2__)
constexpr int kVec = 8;
#else
constexpr int kVec = 4;
#endif
typedef float vf __attribute__((vector_size(kVec * sizeof(float))));
typedef int vi __attribute__((vector_size(kVec * sizeof(int))));

inline vf load(const float* p) {  // unaligned
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }

// The first n (<= kVec) lanes of v to p: nothing past p + n is written (another thread may own
// what follows). The lanes move as bits: an int vector reinterpreted as vf is stored unchanged.
inline void store_first(float* p, vf v, int64_t n) {
#if defined(__AVX512F__)
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), reinterpret_cast<__m512>(v));
#elif defined(__AVX2__)
  vi lane;
  for (int l = 0; l < kVec; ++l) lane[l] = l;
  const vi keep = lane < static_cast<int>(n);
  _mm256_maskstore_ps(p, reinterpret_cast<__m256i>(keep), reinterpret_cast<__m256>(v));
#else
  std::memcpy(p, &v, n * sizeof(float));
#endif
}

// The first n (< kVec) floats at p, zero in the other lanes; nothing past p + n is read.
inline vf load_first(const float* p, int64_t n) {
#if defined(__AVX512F__)
  return reinterpret_cast<vf>(_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p));
#elif defined(__AVX2__)
  vi lane;
  for (int l = 0; l < kVec; ++l) lane[l] = l;
  const vi keep = lane < static_cast<int>(n);
  return reinterpret_cast<vf>(_mm256_maskload_ps(p, reinterpret_cast<__m256i>(keep)));
#else
  vf v = {};
  std::memcpy(&v, p, n * sizeof(float));
  return v;
#endif
}

// The first min(n, kVec) floats at p (none when n <= 0), zero in the other lanes: the end of a
// row of any length, nothing past it read.
inline vf load_up_to(const float* p, int64_t n) {
  if (n >= kVec) return load(p);
  return n > 0 ? load_first(p, n) : vf{};
}

// The even and the odd lanes of a followed by b (a 2 x kVec row split by column parity).
inline void split_even_odd(vf a, vf b, vf& even, vf& odd) {
  vi ev, od;
  for (int l = 0; l < kVec; ++l) ev[l] = 2 * l, od[l] = 2 * l + 1;
  even = __builtin_shuffle(a, b, ev);
  odd = __builtin_shuffle(a, b, od);
}

// Its inverse: even and odd interleaved, (even0, odd0, even1, odd1, ...) in first, then second.
inline void join_even_odd(vf even, vf odd, vf& first, vf& second) {
  vi lo, hi;
  for (int l = 0; l < kVec; ++l) lo[l] = (l % 2) * kVec + l / 2, hi[l] = lo[l] + kVec / 2;
  first = __builtin_shuffle(even, odd, lo);
  second = __builtin_shuffle(even, odd, hi);
}
