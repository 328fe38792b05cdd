// normlab core: the single-process communicator and the collective helpers (see distributed.hpp).
#include "core/distributed.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace nl::dist {

namespace {

// Rank 0 of 1: a sum over one rank is the value itself, a gather is a copy.
class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "single process"; }
  void allreduce_sum(float*, int64_t) override {}
  void allreduce_sum(double*, int64_t) override {}
  void allgather(const float* in, int64_t n, float* out) override { std::copy(in, in + n, out); }
  void allgather(const int64_t* in, int64_t n, int64_t* out) override { std::copy(in, in + n, out); }
  void allgather(const double* in, int64_t n, double* out) override { std::copy(in, in + n, out); }
  void broadcast(float*, int64_t, int) override {}
  void broadcast(char*, int64_t, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(int exit_code) override { std::exit(exit_code); }
};

std::unique_ptr<Communicator>& world_slot() {
  static std::unique_ptr<Communicator> comm = std::make_unique<SingleProcess>();
  return comm;
}

}  // namespace

Communicator& world() { return *world_slot(); }

void set_world(std::unique_ptr<Communicator> comm) {
  NL_CHECK(comm != nullptr, "dist::set_world: null communicator");
  world_slot() = std::move(comm);
}

bool is_distributed() { return world().size() > 1; }

void check_all(const std::string& error, Communicator& comm) {
  // Each rank tells the others the length of its error message (0 = fine) ...
  const auto length = static_cast<int64_t>(error.size());
  std::vector<int64_t> lengths(comm.size());
  comm.allgather(&length, 1, lengths.data());
  const auto first = std::find_if(lengths.begin(), lengths.end(), [](int64_t n) { return n > 0; });
  if (first == lengths.end()) return;
  // ... and the first failing rank sends its message to all.
  const int root = static_cast<int>(first - lengths.begin());
  std::string message = root == comm.rank() ? error : std::string(static_cast<size_t>(*first), ' ');
  comm.broadcast(message.data(), *first, root);
  if (comm.size() == 1) throw Error(message);
  throw Error(fmt::format("rank {} of {}: {}", root, comm.size(), message));
}

void broadcast_tensors(const std::vector<Tensor>& tensors, int root, Communicator& comm) {
  if (comm.size() == 1) return;
  for (const Tensor& t : tensors) {
    if (!t.defined()) continue;
    NL_CHECK(t.is_contiguous(), "dist::broadcast_tensors: tensors must be contiguous");
    comm.broadcast(t.data(), t.numel(), root);
  }
}

void allreduce_gradients(const std::vector<Tensor>& params, float local_weight, std::vector<float>& buffer,
                         Communicator& comm) {
  int64_t total = 0;
  for (const Tensor& p : params)
    if (p.grad().defined()) total += p.numel();
  buffer.resize(static_cast<size_t>(total));
  // Pack (scaled), sum over ranks, unpack: one collective call per step however many tensors.
  int64_t at = 0;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    const float* src = g.data();
    for (int64_t i = 0; i < g.numel(); ++i) buffer[at + i] = src[i] * local_weight;
    at += g.numel();
  }
  comm.allreduce_sum(buffer.data(), total);
  at = 0;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    std::memcpy(g.data(), buffer.data() + at, sizeof(float) * g.numel());
    at += g.numel();
  }
}

}  // namespace nl::dist
