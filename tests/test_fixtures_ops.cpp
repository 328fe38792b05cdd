// Every op in core/ops.hpp against PyTorch: forward output and every input gradient, on
// the cases in tests/fixtures/ops/<op>.safetensors (written by scripts/make_fixtures.py;
// see its docstring for the naming and metadata conventions).
//
// For each case: load the inputs, feed "transpose_<input>" ones as real non-contiguous
// views, run the op, compare `out`, call backward(dout), compare every `grad_<input>`.
// The references are float64 results rounded to float32, so the tolerances measure
// normlab's float32 error only:
//   elementwise, unary, losses          atol 1e-5, rtol 1e-4
//   reductions, softmax, concat, pools  atol 1e-4, rtol 1e-4 (sums of up to 500 terms)
//   var                                 atol 1e-4, rtol 1e-3 (the mean-2000 case)
//   matmul, linear, conv2d              atol 1e-4, rtol 1e-3 (dot products of up to 300 terms)
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <map>

#include <fmt/format.h>

#include "core/ops.hpp"
#include "core/random.hpp"
#include "tests/support/fixtures.hpp"

using namespace nl;
using nl::test::case_params;
using nl::test::fixture_cases;
using nl::test::load_fixture;
using nl::test::require_close;
using json = nlohmann::json;

namespace {

struct Tol {
  double atol, rtol;
};
constexpr Tol kElementwise{1e-5, 1e-4};
constexpr Tol kReduction{1e-4, 1e-4};
constexpr Tol kVar{1e-4, 1e-3};
constexpr Tol kMatmul{1e-4, 1e-3};
// Cross-entropy's gradient is a probability minus a target over the row count: float rounding
// of exp(x - max) / sum gives ~1e-8. Tight enough to fail a log-sum-exp rounded to float
// (3e-6 for logits near 1000, 5e-5 near 1e4, 4e-4 near 1e5 in the logits_near_* cases).
constexpr Tol kCrossEntropy{1e-7, 1e-6};

// The inputs of one case by role ("x", "w", "ids", ...), already transposed where asked.
using Inputs = std::map<std::string, Tensor>;
using OpFn = std::function<Tensor(const Inputs& in, const json& params)>;

// Integer ids stored as F32 (see make_fixtures.py) -> int32, checking they are integers.
std::vector<int32_t> to_ids(const Tensor& t) {
  std::vector<int32_t> ids;
  for (float v : t.to_vector()) {
    REQUIRE(v == std::nearbyint(v));
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// Runs every case of ops/<op>.safetensors, one Catch2 section per case (so one failing
// case does not hide the others).
void run_fixture(const std::string& op, Tol tol, const OpFn& fn) {
  const TensorFile file = load_fixture("ops/" + op + ".safetensors");
  const std::vector<std::string> cases = fixture_cases(file);
  REQUIRE(cases.size() >= 2);  // an empty or stale fixture must not pass silently
  for (const std::string& c : cases) {
    DYNAMIC_SECTION(op << " / " << c) {
      const json params = case_params(file, c);
      // Roles of this case: every "<c>.<role>" tensor except out/dout/grad_*.
      Inputs inputs;
      std::map<std::string, Tensor> leaves;  // role -> the leaf that receives the gradient
      std::vector<std::string> grad_roles;
      for (const auto& [name, t] : file.tensors) {
        if (!starts_with(name, c + ".")) continue;
        const std::string role = name.substr(c.size() + 1);
        if (role == "out" || role == "dout") continue;
        if (starts_with(role, "grad_")) {
          grad_roles.push_back(role.substr(5));
          continue;
        }
        Tensor leaf = t.clone();
        if (file.contains(c + ".grad_" + role)) leaf.set_requires_grad();
        leaves[role] = leaf;
        Tensor input = leaf;
        if (params.contains("transpose_" + role)) {
          const json& d = params["transpose_" + role];
          input = leaf.transpose(d[0].get<int64_t>(), d[1].get<int64_t>());
          REQUIRE(!input.is_contiguous());  // the point of the case
        }
        inputs[role] = input;
      }
      REQUIRE(!grad_roles.empty());
      INFO("params " << params.dump());

      Tensor out = fn(inputs, params);
      require_close(out, file.get(c + ".out"), tol.atol, tol.rtol, op + " " + c + " out");

      out.backward(file.get(c + ".dout"));
      for (const std::string& role : grad_roles) {
        REQUIRE(leaves.count(role) == 1);
        Tensor grad = leaves[role].grad();
        if (!grad.defined()) FAIL(op << " " << c << ": no gradient reached input '" << role << "'");
        if (params.contains("transpose_" + role)) {
          const json& d = params["transpose_" + role];
          grad = grad.transpose(d[0].get<int64_t>(), d[1].get<int64_t>());
        }
        require_close(grad, file.get(c + ".grad_" + role), tol.atol, tol.rtol, op + " " + c + " grad_" + role);
      }
    }
  }
}

}  // namespace

// ---------------------------------------------------------------- the helpers themselves

TEST_CASE("compare_close reports shape mismatches and the first differing elements", "[fixtures]") {
  Tensor e = Tensor::from_vector({2, 3}, {0, 1, 2, 3, 4, 5});
  Tensor a = Tensor::from_vector({2, 3}, {0, 1, 2.5f, 3, 4, 5 + 1e-6f});
  REQUIRE(nl::test::compare_close(e, e, 0, 0, "same").empty());
  REQUIRE(nl::test::compare_close(a, e, 1e-5, 0, "x").find("1 of 6 elements differ") != std::string::npos);
  REQUIRE(nl::test::compare_close(a, e, 1e-5, 0, "x").find("at [0, 2]") != std::string::npos);
  REQUIRE(nl::test::compare_close(a, e, 1e-5, 0, "x").find("max abs diff 0.5") != std::string::npos);
  REQUIRE(nl::test::compare_close(a, e, 0, 0.25, "rel").empty());  // 0.5 <= 0.25 * 2
  REQUIRE(nl::test::compare_close(e.view({3, 2}), e, 1, 1, "s").find("shape [3, 2] but expected [2, 3]") !=
          std::string::npos);
  Tensor nan = Tensor::from_vector({2}, {NAN, 1});
  REQUIRE(!nl::test::compare_close(nan, nan, 1, 1, "nan").empty());  // NaN never matches
  Tensor inf = Tensor::from_vector({1}, {INFINITY});
  REQUIRE(nl::test::compare_close(inf, inf, 0, 0, "inf").empty());
}

// ---------------------------------------------------------------- elementwise

TEST_CASE("fixtures: binary elementwise ops with broadcasting", "[fixtures][elementwise]") {
  auto binary = [](Tensor (*f)(const Tensor&, const Tensor&)) {
    return [f](const Inputs& in, const json&) { return f(in.at("a"), in.at("b")); };
  };
  run_fixture("add", kElementwise, binary(&nl::add));
  run_fixture("sub", kElementwise, binary(&nl::sub));
  run_fixture("mul", kElementwise, binary(&nl::mul));
  run_fixture("div", kElementwise, binary(&nl::div));
}

TEST_CASE("fixtures: tensor-scalar add and mul", "[fixtures][elementwise]") {
  run_fixture("add_scalar", kElementwise, [](const Inputs& in, const json& p) { return add(in.at("x"), p["b"].get<float>()); });
  run_fixture("mul_scalar", kElementwise, [](const Inputs& in, const json& p) { return mul(in.at("x"), p["b"].get<float>()); });
}

TEST_CASE("fixtures: unary ops", "[fixtures][elementwise]") {
  auto unary = [](Tensor (*f)(const Tensor&)) { return [f](const Inputs& in, const json&) { return f(in.at("x")); }; };
  run_fixture("neg", kElementwise, unary(&nl::neg));
  run_fixture("exp", kElementwise, unary(&nl::exp));
  run_fixture("log", kElementwise, unary(&nl::log));
  run_fixture("sqrt", kElementwise, unary(&nl::sqrt));
  run_fixture("rsqrt", kElementwise, unary(&nl::rsqrt));
  run_fixture("abs", kElementwise, unary(&nl::abs));  // includes exact zeros
  run_fixture("relu", kElementwise, unary(&nl::relu));  // includes exact zeros
  run_fixture("gelu", kElementwise, unary(&nl::gelu));
  run_fixture("sigmoid", kElementwise, unary(&nl::sigmoid));
  run_fixture("tanh", kElementwise, unary(&nl::tanh));
}

TEST_CASE("fixtures: unary ops with parameters (pow, clamp, leaky_relu)", "[fixtures][elementwise]") {
  run_fixture("pow", kElementwise, [](const Inputs& in, const json& p) { return pow(in.at("x"), p["exponent"].get<float>()); });
  run_fixture("clamp", kElementwise, [](const Inputs& in, const json& p) {
    return clamp(in.at("x"), p["lo"].get<float>(), p["hi"].get<float>());
  });
  run_fixture("leaky_relu", kElementwise, [](const Inputs& in, const json& p) {
    return p.contains("negative_slope") ? leaky_relu(in.at("x"), p["negative_slope"].get<float>()) : leaky_relu(in.at("x"));
  });
}

// ---------------------------------------------------------------- reductions

TEST_CASE("fixtures: sum and mean over dims", "[fixtures][reduce]") {
  auto reduce = [](Tensor (*f)(const Tensor&, const std::vector<int64_t>&, bool)) {
    return [f](const Inputs& in, const json& p) {
      return f(in.at("x"), p["dims"].get<std::vector<int64_t>>(), p["keepdim"].get<bool>());
    };
  };
  run_fixture("sum", kReduction, reduce(&nl::sum));
  run_fixture("mean", kReduction, reduce(&nl::mean));
}

TEST_CASE("fixtures: var (unbiased/biased, keepdim, mean 2000)", "[fixtures][reduce]") {
  run_fixture("var", kVar, [](const Inputs& in, const json& p) {
    return var(in.at("x"), p["dims"].get<std::vector<int64_t>>(), p["unbiased"].get<bool>(), p["keepdim"].get<bool>());
  });
}

TEST_CASE("fixtures: max along a dim (gradient to the first maximum)", "[fixtures][reduce]") {
  run_fixture("max", kReduction, [](const Inputs& in, const json& p) {
    return max(in.at("x"), p["dim"].get<int64_t>(), p["keepdim"].get<bool>());
  });
}

TEST_CASE("fixtures: softmax and log_softmax (incl. magnitudes ~1000)", "[fixtures][reduce]") {
  run_fixture("softmax", kReduction, [](const Inputs& in, const json& p) { return softmax(in.at("x"), p["dim"].get<int64_t>()); });
  run_fixture("log_softmax", kReduction,
              [](const Inputs& in, const json& p) { return log_softmax(in.at("x"), p["dim"].get<int64_t>()); });
}

TEST_CASE("fixtures: concat", "[fixtures][shape]") {
  run_fixture("concat", kReduction, [](const Inputs& in, const json& p) {
    std::vector<Tensor> parts;
    for (int k = 0; k < p["n"].get<int>(); ++k) parts.push_back(in.at(fmt::format("x{}", k)));
    return concat(parts, p["dim"].get<int64_t>());
  });
}

// ---------------------------------------------------------------- linear algebra, conv, pool

TEST_CASE("fixtures: matmul (2-D, batched, broadcast, vectors, transposed)", "[fixtures][matmul]") {
  run_fixture("matmul", kMatmul, [](const Inputs& in, const json&) { return matmul(in.at("a"), in.at("b")); });
}

TEST_CASE("fixtures: linear with and without bias", "[fixtures][matmul]") {
  run_fixture("linear", kMatmul, [](const Inputs& in, const json&) {
    return linear(in.at("x"), in.at("w"), in.count("b") ? in.at("b") : Tensor());
  });
}

TEST_CASE("fixtures: conv2d (stride, padding, dilation, groups, depthwise, bias)", "[fixtures][conv]") {
  run_fixture("conv2d", kMatmul, [](const Inputs& in, const json& p) {
    Conv2dOptions o;
    o.stride_h = p["stride_h"].get<int64_t>();
    o.stride_w = p["stride_w"].get<int64_t>();
    o.pad_h = p["pad_h"].get<int64_t>();
    o.pad_w = p["pad_w"].get<int64_t>();
    o.dilation_h = p["dilation_h"].get<int64_t>();
    o.dilation_w = p["dilation_w"].get<int64_t>();
    o.groups = p["groups"].get<int64_t>();
    return conv2d(in.at("x"), in.at("w"), in.count("b") ? in.at("b") : Tensor(), o);
  });
}

TEST_CASE("fixtures: max_pool2d, avg_pool2d, global_avg_pool2d", "[fixtures][pool]") {
  auto pool = [](Tensor (*f)(const Tensor&, int64_t, int64_t, int64_t)) {
    return [f](const Inputs& in, const json& p) {
      return f(in.at("x"), p["kernel"].get<int64_t>(), p["stride"].get<int64_t>(), p["padding"].get<int64_t>());
    };
  };
  run_fixture("max_pool2d", kReduction, pool(&nl::max_pool2d));
  run_fixture("avg_pool2d", kReduction, pool(&nl::avg_pool2d));
  run_fixture("global_avg_pool2d", kReduction, [](const Inputs& in, const json&) { return global_avg_pool2d(in.at("x")); });
}

// ---------------------------------------------------------------- embedding, dropout, losses

TEST_CASE("fixtures: embedding with repeated ids", "[fixtures][nn]") {
  run_fixture("embedding", kElementwise, [](const Inputs& in, const json&) {
    const Tensor& ids = in.at("ids");
    return embedding(in.at("w"), to_ids(ids), ids.shape());
  });
}

TEST_CASE("fixtures: cross_entropy (ignore_index, label_smoothing) and mse_loss", "[fixtures][nn]") {
  run_fixture("cross_entropy", kCrossEntropy, [](const Inputs& in, const json& p) {
    return cross_entropy(in.at("x"), to_ids(in.at("targets")), p["ignore_index"].get<int32_t>(),
                         p["label_smoothing"].get<float>());
  });
  run_fixture("mse_loss", kElementwise, [](const Inputs& in, const json&) { return mse_loss(in.at("x"), in.at("target")); });
}

TEST_CASE("fixtures: dropout is the identity for p = 0 and in eval mode", "[fixtures][nn]") {
  Generator gen(7);
  run_fixture("dropout", kElementwise, [&gen](const Inputs& in, const json& p) {
    return dropout(in.at("x"), p["p"].get<float>(), p["training"].get<bool>(), gen);
  });
}

TEST_CASE("dropout in training zeroes a fraction p and scales survivors by 1/(1-p)", "[fixtures][nn]") {
  // Random, so no fixture: check the distribution. With n = 20000 and p = 0.3 the zero
  // fraction has standard deviation sqrt(p(1-p)/n) = 0.0032; 0.02 is over 6 sigma.
  const float p = 0.3f;
  const int64_t n = 20000;
  Generator gen(42);
  Tensor x = Tensor::full({n}, 2.0f).set_requires_grad();
  Tensor y = dropout(x, p, /*training=*/true, gen);
  y.backward(Tensor::ones({n}));
  const std::vector<float> out = y.to_vector(), grad = x.grad().to_vector();
  int64_t zeros = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (out[i] == 0.0f) {
      ++zeros;
      REQUIRE(grad[i] == 0.0f);  // dropped: no gradient
    } else {
      REQUIRE(out[i] == Approx(2.0f / (1 - p)).epsilon(1e-6));
      REQUIRE(grad[i] == Approx(1.0f / (1 - p)).epsilon(1e-6));  // same mask, same scale
    }
  }
  REQUIRE(std::fabs(static_cast<double>(zeros) / n - p) < 0.02);
  // A different seed gives a different mask; the same seed the same mask.
  Generator g1(1), g2(1), g3(2);
  Tensor ones = Tensor::ones({256});
  REQUIRE(dropout(ones, 0.5f, true, g1).to_vector() == dropout(ones, 0.5f, true, g2).to_vector());
  REQUIRE(dropout(ones, 0.5f, true, g1).to_vector() != dropout(ones, 0.5f, true, g3).to_vector());
}
