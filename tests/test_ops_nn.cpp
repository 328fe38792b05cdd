// Tests of embedding, dropout, cross_entropy and mse_loss: hand-computed values (cross-entropy
// values were checked against torch 1.13), gradchecks including ignore_index and label
// smoothing, dropout statistics and seeding, and error messages.
#include <catch2/catch.hpp>

#include <cmath>

#include "core/autograd.hpp"
#include "core/gradcheck.hpp"
#include "core/ops.hpp"
#include "core/random.hpp"
#include "tests/support/require_gradcheck.hpp"

using namespace nl;
using nl::test::require_gradcheck;

namespace {

}  // namespace

TEST_CASE("embedding gathers rows and scatter-adds repeated ids", "[embedding]") {
  Tensor w = Tensor::from_vector({3, 2}, {0, 1, 10, 11, 20, 21}).set_requires_grad();
  Tensor y = embedding(w, {2, 0, 2, 1}, {2, 2});
  REQUIRE(y.shape() == Shape{2, 2, 2});
  REQUIRE(y.to_vector() == std::vector<float>{20, 21, 0, 1, 20, 21, 10, 11});
  y.backward(Tensor::from_vector({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8}));
  // Row 2 was used twice: (1,2) + (5,6).
  REQUIRE(w.grad().to_vector() == std::vector<float>{3, 4, 7, 8, 6, 8});
  Generator gen(21);
  Tensor wr = randn({5, 3}, gen).set_requires_grad();
  require_gradcheck([](const std::vector<Tensor>& in) { return embedding(in[0], {4, 1, 4, 0, 3, 1}, {3, 2}); }, {wr});
}

TEST_CASE("embedding errors name the id and the table size", "[embedding][errors]") {
  Tensor w = Tensor::zeros({3, 2});
  REQUIRE_THROWS_WITH(embedding(w, {0, 3}, {2}), Catch::Contains("id 3") && Catch::Contains("3 rows"));
  REQUIRE_THROWS_WITH(embedding(w, {-1}, {1}), Catch::Contains("id -1"));
  REQUIRE_THROWS_WITH(embedding(w, {0, 1}, {3}), Catch::Contains("[3]") && Catch::Contains("[3, 2]"));
}

TEST_CASE("dropout: identity in eval and for p = 0, inverted scaling in training", "[dropout]") {
  Generator gen(22);
  Tensor x = Tensor::ones({20000});
  REQUIRE(dropout(x, 0.5f, false, gen).to_vector() == x.to_vector());
  REQUIRE(dropout(x, 0.0f, true, gen).to_vector() == x.to_vector());
  std::vector<float> y = dropout(x, 0.25f, true, gen).to_vector();
  int64_t zeros = 0;
  for (float v : y) {
    REQUIRE((v == 0.0f || v == Approx(1.0f / 0.75f)));
    zeros += v == 0.0f;
  }
  // 20000 draws at p = 0.25: 5000 expected, sd ~61; 6 sd is a loose but real bound.
  REQUIRE(std::abs(zeros - 5000) < 370);
  // Same seed, same mask.
  Generator g1(5), g2(5);
  REQUIRE(dropout(x, 0.5f, true, g1).to_vector() == dropout(x, 0.5f, true, g2).to_vector());
  REQUIRE_THROWS_WITH(dropout(x, 1.0f, true, gen), Catch::Contains("dropout") && Catch::Contains("[0, 1)"));
}

TEST_CASE("dropout gradient is the same mask", "[dropout][gradcheck]") {
  Generator data_gen(23);
  Tensor x = randn({4, 6}, data_gen).set_requires_grad();
  // A fresh generator per call keeps the mask fixed across gradcheck's repeated evaluations.
  require_gradcheck(
      [](const std::vector<Tensor>& in) {
        Generator g(99);
        return dropout(in[0], 0.3f, true, g);
      },
      {x});
  Generator g(99);
  Tensor y = dropout(x, 0.3f, true, g);
  x.zero_grad();
  y.backward(Tensor::ones({4, 6}));
  Generator same(99);
  REQUIRE(x.grad().to_vector() == dropout(Tensor::ones({4, 6}), 0.3f, true, same).to_vector());
}

TEST_CASE("cross_entropy matches PyTorch on a small case", "[cross_entropy]") {
  Tensor logits = Tensor::from_vector({3, 3}, {1, 2, 3, 1, 1, 1, 0, 10, -5}).set_requires_grad();
  // torch: F.cross_entropy(logits, [2, 0, 1]) = 0.5020880 = (sum of the three rows) / 3
  //   row 0: log(e^1+e^2+e^3) - 3 = 0.4076059;  row 1: log 3 = 1.0986123;  row 2: ~4.54e-5
  Tensor loss = cross_entropy(logits, {2, 0, 1});
  REQUIRE(loss.shape() == Shape{});
  REQUIRE(loss.item() == Approx(0.5020880f).epsilon(1e-6));
  // ignore_index drops row 1 from the mean: (0.4076059 + 4.54e-5) / 2 = 0.2038256
  REQUIRE(cross_entropy(logits, {2, -100, 1}).item() == Approx(0.2038256f).epsilon(1e-5));
  // torch: F.cross_entropy(logits, [2, 0, 1], label_smoothing=0.1) = 0.8131991
  REQUIRE(cross_entropy(logits, {2, 0, 1}, -100, 0.1f).item() == Approx(0.8131991f).epsilon(1e-5));
  // Gradient: (softmax - onehot) / 3; row 1 is uniform logits -> (1/3 - 1, 1/3, 1/3) / 3.
  loss.backward();
  std::vector<float> g = logits.grad().to_vector();
  REQUIRE(g[3] == Approx((1.0f / 3 - 1) / 3));
  REQUIRE(g[4] == Approx(1.0f / 9));
  // All rows ignored: 0/0 = NaN, and a zero gradient (both as in PyTorch).
  Tensor l2 = Tensor::zeros({2, 3}).set_requires_grad();
  Tensor nan_loss = cross_entropy(l2, {-100, -100});
  REQUIRE(std::isnan(nan_loss.item()));
  nan_loss.backward();
  REQUIRE(l2.grad().to_vector() == std::vector<float>(6, 0.0f));
}

TEST_CASE("cross_entropy gradcheck with ignore_index and label smoothing", "[cross_entropy][gradcheck]") {
  Generator gen(24);
  Tensor logits = randn({6, 5}, gen).set_requires_grad();
  require_gradcheck([](const std::vector<Tensor>& in) { return cross_entropy(in[0], {0, 4, 2, 2, 1, 3}); }, {logits});
  require_gradcheck([](const std::vector<Tensor>& in) { return cross_entropy(in[0], {0, 4, -1, 2, -1, 3}, -1); },
                    {logits});
  require_gradcheck([](const std::vector<Tensor>& in) { return cross_entropy(in[0], {0, 4, 7, 2, 1, 7}, 7, 0.2f); },
                    {logits});
  // With a layer in front (large logits exercise the max shift).
  require_gradcheck([](const std::vector<Tensor>& in) { return cross_entropy(mul(in[0], 20.0f), {1, 1, 1, 0, 0, 0}); },
                    {logits});
}

TEST_CASE("cross_entropy errors name the target and the shapes", "[cross_entropy][errors]") {
  Tensor logits = Tensor::zeros({2, 3});
  REQUIRE_THROWS_WITH(cross_entropy(logits, {0, 3}), Catch::Contains("target 3") && Catch::Contains("3 classes"));
  REQUIRE_THROWS_WITH(cross_entropy(logits, {0}), Catch::Contains("[2, 3]") && Catch::Contains("2 targets"));
  REQUIRE_THROWS_WITH(cross_entropy(Tensor::zeros({2, 3, 4}), {0, 0}), Catch::Contains("[2, 3, 4]"));
}

TEST_CASE("mse_loss by hand and gradcheck on both sides", "[mse_loss]") {
  Tensor p = Tensor::from_vector({2, 2}, {1, 2, 3, 4});
  Tensor t = Tensor::from_vector({2, 2}, {1, 0, 3, 0});
  REQUIRE(mse_loss(p, t).item() == Approx(5.0f));  // (0 + 4 + 0 + 16) / 4
  Generator gen(25);
  Tensor a = randn({3, 4}, gen).set_requires_grad(), b = randn({3, 4}, gen).set_requires_grad();
  require_gradcheck([](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1]); }, {a, b});
  REQUIRE_THROWS_WITH(mse_loss(a, Tensor::zeros({4, 3})), Catch::Contains("[3, 4]") && Catch::Contains("[4, 3]"));
}
