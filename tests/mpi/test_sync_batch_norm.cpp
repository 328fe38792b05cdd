// SyncBatchNorm over 2 ranks against BatchNorm on the whole batch in one process (how
// PyTorch tests its SyncBatchNorm): outputs, the input gradient, gamma/beta gradients after
// the data-parallel gradient average, and the running statistics. Run by ctest as
// `mpirun -np 2` (mpi:test_sync_batch_norm); every rank also computes the one-process
// reference itself, on the whole batch.
//
// Losses: L = sum_i <y_i, dY_i> / N over the whole batch; rank r's own loss is the mean over
// its n_r samples, L_r = sum_{i in r} <y_i, dY_i> / n_r, so L = sum_r w_r L_r, w_r = n_r / N.
// The step's gradient is sum_r w_r * (rank r's gradients), and w_r * dx_r = dL/dx_r.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/autograd.hpp"
#include "core/distributed.hpp"
#include "core/ops.hpp"
#include "core/random.hpp"
#include "layers/norm/sync_batch_norm.hpp"

using namespace nl;

namespace {

Tensor random_tensor(const Shape& shape, Generator& gen, float mean, float stddev) {
  Tensor t = Tensor::empty(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = gen.normal(mean, stddev);
  return t;
}

void check_close(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  INFO(what << " on rank " << dist::world().rank());
  REQUIRE(got.numel() == want.numel());
  const auto g = got.contiguous().to_vector(), w = want.contiguous().to_vector();
  double worst = 0;
  for (size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::abs(double(g[i]) - w[i]) / (1.0 + std::abs(w[i])));
  INFO("worst difference " << worst);
  CHECK(worst < tol);
}

// counts[r]: samples on rank r; dims 2: [N, C, H, W], dims 1: [N, C].
void compare_with_whole_batch(const std::vector<int64_t>& counts, int dims) {
  auto& comm = dist::world();
  REQUIRE(static_cast<int>(counts.size()) == comm.size());
  const int r = comm.rank();
  const int64_t C = 3, N = counts[0] + counts[1];
  const int64_t n0 = r == 0 ? 0 : counts[0], n = counts[r];
  const Shape whole_shape = dims == 2 ? Shape{N, C, 4, 5} : Shape{N, C};
  Generator gen(42);  // the same data on every rank
  const Tensor x_all = random_tensor(whole_shape, gen, 3.0f, 2.0f);  // mean far from 0: the merge matters
  const Tensor dy_all = random_tensor(whole_shape, gen, 0.0f, 1.0f);
  const Tensor gamma = random_tensor({C}, gen, 1.0f, 0.3f), beta = random_tensor({C}, gen, 0.0f, 0.3f);

  // One process, the whole batch.
  BatchNorm whole(C, dims);
  whole.weight.copy_(gamma);
  whole.bias.copy_(beta);
  Tensor x_whole = x_all.clone().set_requires_grad(true);
  const Tensor y_whole = whole(x_whole);
  (sum(y_whole * dy_all) * (1.0f / N)).backward();

  // This rank's part under SyncBatchNorm.
  SyncBatchNorm sync(C, dims);
  sync.weight.copy_(gamma);
  sync.bias.copy_(beta);
  Tensor x_mine = x_all.slice(0, n0, n0 + n).clone().set_requires_grad(true);
  const Tensor y_mine = sync(x_mine);
  (sum(y_mine * dy_all.slice(0, n0, n0 + n)) * (1.0f / n)).backward();
  const float w = static_cast<float>(n) / N;
  std::vector<float> buffer;
  dist::allreduce_gradients({sync.weight, sync.bias}, w, buffer);

  check_close(y_mine, y_whole.slice(0, n0, n0 + n), 1e-5, "output");
  check_close(x_mine.grad() * w, x_whole.grad().slice(0, n0, n0 + n), 1e-5, "input gradient (times w_r)");
  check_close(sync.weight.grad(), whole.weight.grad(), 1e-5, "gamma gradient");
  check_close(sync.bias.grad(), whole.bias.grad(), 1e-5, "beta gradient");
  check_close(sync.running_mean, whole.running_mean, 1e-6, "running_mean");
  check_close(sync.running_var, whole.running_var, 1e-6, "running_var (Bessel with the global count)");
  CHECK(sync.num_batches_tracked.item() == 1.0f);
  // Eval mode: the running statistics, no communication, the same as BatchNorm's.
  sync.eval();
  whole.eval();
  check_close(sync(x_all), whole(x_all), 1e-6, "eval output");
}

}  // namespace

TEST_CASE("SyncBatchNorm2d over 2 ranks x 3 = BatchNorm2d on 6 in one process", "[mpi][syncbn]") {
  compare_with_whole_batch({3, 3}, 2);
}

TEST_CASE("SyncBatchNorm2d with unequal counts (3 + 5 samples) = BatchNorm2d on 8", "[mpi][syncbn]") {
  compare_with_whole_batch({3, 5}, 2);
}

TEST_CASE("SyncBatchNorm1d over 2 ranks x 4 = BatchNorm1d on 8", "[mpi][syncbn]") {
  compare_with_whole_batch({4, 4}, 1);
}

TEST_CASE("SyncBatchNorm: one value per channel in the global batch is refused on every rank", "[mpi][syncbn]") {
  // One sample on rank 0, none on rank 1: a global batch of one, as PyTorch refuses.
  SyncBatchNorm sync(2, 1);
  const int64_t n = dist::world().rank() == 0 ? 1 : 0;
  CHECK_THROWS_WITH(sync(Tensor::ones({n, 2})), Catch::Matchers::Contains("Expected more than 1 value per channel"));
  // One sample on each of the 2 ranks is a global batch of two: fine.
  CHECK_NOTHROW(sync(Tensor::ones({1, 2})));
}
