// Tests of core/distributed.hpp on Open MPI (dist/), run as `mpirun -np 2` by ctest
// (mpi:test_collectives). Every rank runs every test case; values are chosen per rank so
// a wrong root, order or scaling shows up as a wrong number.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "core/distributed.hpp"
#include "core/tensor.hpp"

using nl::Tensor;
namespace dist = nl::dist;

TEST_CASE("the test runs as 2 MPI ranks", "[mpi]") {
  INFO("run this executable with mpirun -np 2 (ctest does)");
  REQUIRE(dist::world().size() == 2);
  CHECK(dist::world().name().find("MPI") != std::string::npos);
}

TEST_CASE("allreduce_sum adds every rank's values, in place", "[mpi]") {
  auto& comm = dist::world();
  const int r = comm.rank(), K = comm.size();
  std::vector<float> f{1.0f + r, 10.0f * r, -0.5f};
  comm.allreduce_sum(f.data(), 3);
  CHECK(f[0] == Approx(K + K * (K - 1) / 2.0));  // sum of 1 + r
  CHECK(f[1] == Approx(10.0 * K * (K - 1) / 2.0));
  CHECK(f[2] == Approx(-0.5 * K));
  std::vector<double> d{0.25 * (r + 1)};
  comm.allreduce_sum(d.data(), 1);
  CHECK(d[0] == Approx(0.25 * K * (K + 1) / 2.0));
}

TEST_CASE("allgather puts rank r's values at r*n", "[mpi]") {
  auto& comm = dist::world();
  const int r = comm.rank(), K = comm.size();
  const float mine[2] = {static_cast<float>(r), 100.0f + r};
  std::vector<float> all(2 * K, -1.0f);
  comm.allgather(mine, 2, all.data());
  for (int k = 0; k < K; ++k) {
    CHECK(all[2 * k] == k);
    CHECK(all[2 * k + 1] == 100 + k);
  }
  const int64_t count = 7 + r;
  std::vector<int64_t> counts(K);
  comm.allgather(&count, 1, counts.data());
  for (int k = 0; k < K; ++k) CHECK(counts[k] == 7 + k);
}

TEST_CASE("broadcast copies the root's values to every rank", "[mpi]") {
  auto& comm = dist::world();
  const int r = comm.rank();
  const int root = comm.size() - 1;  // not rank 0, so a root ignored by mistake shows
  std::vector<float> v{1.0f * r, 2.0f * r};
  comm.broadcast(v.data(), 2, root);
  CHECK(v[0] == root);
  CHECK(v[1] == 2.0f * root);
  std::string s = r == root ? "from the root" : "xxxxxxxxxxxxx";
  comm.broadcast(s.data(), static_cast<int64_t>(s.size()), root);
  CHECK(s == "from the root");

  Tensor a = Tensor::full({3}, static_cast<float>(r)), b = Tensor::full({2, 2}, 5.0f + r);
  dist::broadcast_tensors({a, b}, 0);
  for (int i = 0; i < 3; ++i) CHECK(a.data()[i] == 0.0f);
  for (int i = 0; i < 4; ++i) CHECK(b.data()[i] == 5.0f);
}

TEST_CASE("check_all: one rank's error becomes every rank's error, naming the rank", "[mpi]") {
  auto& comm = dist::world();
  CHECK_NOTHROW(dist::check_all(""));
  const std::string mine = comm.rank() == 1 ? "cannot read data/mnist" : "";
  try {
    dist::check_all(mine);
    FAIL("check_all did not throw on rank " << comm.rank());
  } catch (const nl::Error& e) {
    CHECK(std::string(e.what()) == "rank 1 of 2: cannot read data/mnist");
  }
}

TEST_CASE("allreduce_gradients: one weighted sum over a flat buffer, same bits on every rank", "[mpi]") {
  auto& comm = dist::world();
  const int r = comm.rank();
  // Two parameters with gradients and one without (skipped on every rank).
  Tensor w = Tensor::zeros({2, 3}), b = Tensor::zeros({3}), unused = Tensor::zeros({4});
  for (Tensor* p : {&w, &b, &unused}) p->set_requires_grad(true);
  w.set_grad(Tensor::full({2, 3}, 1.0f + r));
  b.set_grad(Tensor::full({3}, 0.1f * (r + 1)));
  // Unequal shares: rank 0 holds 3 of 4 examples, rank 1 one (weights 3/4 and 1/4).
  const float weight = r == 0 ? 0.75f : 0.25f;
  std::vector<float> buffer;
  dist::allreduce_gradients({w, b, unused}, weight, buffer);
  CHECK(buffer.size() == 9);  // one buffer for the 6 + 3 values; the unused parameter is not sent
  for (int i = 0; i < 6; ++i) CHECK(w.grad().data()[i] == Approx(0.75 * 1 + 0.25 * 2));
  for (int i = 0; i < 3; ++i) CHECK(b.grad().data()[i] == Approx(0.75 * 0.1 + 0.25 * 0.2));
  CHECK_FALSE(unused.grad().defined());
  // Bit-identical on both ranks: rank 0's bits against everyone's.
  std::vector<float> mine(w.grad().data(), w.grad().data() + 6), root = mine;
  comm.broadcast(root.data(), 6, 0);
  CHECK(std::memcmp(mine.data(), root.data(), sizeof(float) * 6) == 0);
}
