// Tests of the layer modules: Sequential, pooling, Flatten, Dropout, Embedding, LSTM/GRU
// (every cell norm), causal self-attention and the Transformer block. Gradients are checked
// by central differences (core/gradcheck.hpp) for the input and every parameter; the
// recurrent cells are also compared with the plain composite equations written out here.
#include <catch2/catch.hpp>

#include <cmath>

#include "core/gradcheck.hpp"
#include "core/ops.hpp"
#include "core/random.hpp"
#include "layers/attention.hpp"
#include "layers/dropout.hpp"
#include "layers/embedding.hpp"
#include "layers/linear.hpp"
#include "layers/pooling.hpp"
#include "layers/recurrent.hpp"
#include "layers/sequential.hpp"
#include "layers/transformer.hpp"
#include "support/fixtures.hpp"

using namespace nl;

namespace {

// Gradcheck of module(x) with respect to x and every parameter of the module.
void require_module_gradcheck(Module& m, const Tensor& x, GradcheckOptions opt = {}) {
  std::vector<Tensor> inputs = {x};
  for (auto& p : m.parameters()) inputs.push_back(p);
  GradcheckResult r = gradcheck([&](const std::vector<Tensor>& in) { return m.forward(in[0]); }, inputs, opt);
  INFO(m.name() << "\n" << r.report);
  REQUIRE(r.ok);
}

float max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  auto va = a.to_vector(), vb = b.to_vector();
  float m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]));
  return m;
}

}  // namespace

// ---- simple modules ----

TEST_CASE("Sequential names children 0, 1, ... and runs them in order", "[layers]") {
  Generator gen(1);
  Sequential seq;
  seq.append(std::make_shared<Linear>(3, 4, true, gen));
  seq.append(make_activation("relu"));
  seq.append(std::make_shared<Linear>(4, 2, true, gen));
  auto names = seq.named_parameters();
  REQUIRE(names.size() == 4);
  CHECK(names[0].first == "0.weight");
  CHECK(names[3].first == "2.bias");
  Tensor x = randn({5, 3}, gen);
  auto m = seq.modules();
  Tensor expected = m[2]->forward(relu(m[0]->forward(x)));
  REQUIRE(max_abs_diff(seq.forward(x), expected) == 0.0f);
}

TEST_CASE("pooling modules and Flatten: shapes, values and errors", "[layers]") {
  Tensor x = Tensor::from_vector({1, 1, 2, 4}, {1, 2, 3, 4, 5, 6, 7, 8});
  MaxPool2d maxpool(2);
  AvgPool2d avgpool(2);
  GlobalAvgPool2d gap;
  REQUIRE(maxpool.forward(x).to_vector() == std::vector<float>{6, 8});
  REQUIRE(avgpool.forward(x).to_vector() == std::vector<float>{3.5f, 5.5f});
  REQUIRE(gap.forward(x).shape() == Shape{1, 1});
  REQUIRE(gap.forward(x).item() == Approx(4.5f));
  REQUIRE(Flatten().forward(Tensor::zeros({2, 3, 4, 5})).shape() == Shape{2, 60});
  REQUIRE_THROWS_WITH(maxpool.forward(Tensor::zeros({2, 3})), Catch::Contains("MaxPool2d") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(MaxPool2d(0), Catch::Contains("MaxPool2d"));
}

TEST_CASE("Dropout: identity in eval, inverted scaling in training", "[layers]") {
  Generator gen(2);
  Dropout drop(0.5f, gen);
  Tensor x = Tensor::ones({4000});
  Tensor y = drop.forward(x);
  int zeros = 0;
  for (float v : y.to_vector()) {
    REQUIRE((v == 0.0f || v == Approx(2.0f)));
    zeros += v == 0.0f;
  }
  REQUIRE(zeros > 1800);  // ~2000 expected; 6 standard deviations is ~190
  REQUIRE(zeros < 2200);
  drop.eval();
  REQUIRE(drop.forward(x).same_storage(x));
  REQUIRE_THROWS_WITH(Dropout(1.0f, gen), Catch::Contains("Dropout"));
}

TEST_CASE("Embedding looks up rows and wants ids", "[layers]") {
  Generator gen(3);
  Embedding emb(5, 3, gen);
  Tensor y = emb.forward_ids({4, 0, 4}, {1, 3});
  REQUIRE(y.shape() == Shape{1, 3, 3});
  auto w = emb.weight.to_vector(), v = y.to_vector();
  for (int j = 0; j < 3; ++j) {
    CHECK(v[j] == w[4 * 3 + j]);
    CHECK(v[3 + j] == w[j]);
    CHECK(v[6 + j] == w[4 * 3 + j]);
  }
  REQUIRE_THROWS_WITH(emb.forward_ids({5}, {1}), Catch::Contains("Embedding(5, 3)") && Catch::Contains("5"));
  REQUIRE_THROWS_WITH(emb.forward(Tensor::zeros({2})), Catch::Contains("forward_ids"));
}

// ---- recurrent ----

TEST_CASE("fused LSTM/GRU pointwise steps: gradient check", "[layers][recurrent]") {
  Generator gen(4);
  const int64_t B = 3, H = 5;
  Tensor g4 = randn({B, 4 * H}, gen).set_requires_grad(), c = randn({B, H}, gen).set_requires_grad();
  auto r1 = gradcheck([](const std::vector<Tensor>& in) { return lstm_cell_state(in[0], in[1]); }, {g4, c});
  INFO(r1.report);
  REQUIRE(r1.ok);
  auto r2 = gradcheck([](const std::vector<Tensor>& in) { return lstm_cell_output(in[0], in[1]); }, {g4, c});
  INFO(r2.report);
  REQUIRE(r2.ok);
  Tensor gx = randn({B, 3 * H}, gen).set_requires_grad(), gh = randn({B, 3 * H}, gen).set_requires_grad();
  auto r3 = gradcheck([](const std::vector<Tensor>& in) { return gru_cell(in[0], in[1], in[2]); }, {gx, gh, c});
  INFO(r3.report);
  REQUIRE(r3.ok);
  REQUIRE_THROWS_WITH(lstm_cell_state(randn({B, 3 * H}, gen), c), Catch::Contains("lstm_cell_state") &&
                                                                      Catch::Contains("[3, 15]"));
}

TEST_CASE("plain LSTM and GRU equal PyTorch's equations written with primitive ops", "[layers][recurrent]") {
  Generator gen(5);
  const int64_t B = 2, T = 4, D = 3, H = 5;
  Tensor x = randn({B, T, D}, gen);
  auto chunk = [H](const Tensor& t, int k) { return t.slice(1, k * H, (k + 1) * H); };
  SECTION("LSTM") {
    LSTM lstm(D, H, {}, gen);
    Tensor h = Tensor::zeros({B, H}), c = Tensor::zeros({B, H});
    std::vector<Tensor> hs;
    for (int64_t t = 0; t < T; ++t) {
      Tensor xt = x.select(1, t).contiguous();
      Tensor gates = linear(xt, lstm.weight_ih, lstm.bias_ih) + linear(h, lstm.weight_hh, lstm.bias_hh);
      Tensor i = sigmoid(chunk(gates, 0)), f = sigmoid(chunk(gates, 1)), g = tanh(chunk(gates, 2)),
             o = sigmoid(chunk(gates, 3));
      c = f * c + i * g;
      h = o * tanh(c);
      hs.push_back(h.unsqueeze(1));
    }
    REQUIRE(max_abs_diff(lstm.forward(x), concat(hs, 1)) < 1e-5f);
  }
  SECTION("GRU") {
    GRU gru(D, H, {}, gen);
    Tensor h = Tensor::zeros({B, H});
    std::vector<Tensor> hs;
    for (int64_t t = 0; t < T; ++t) {
      Tensor gx = linear(x.select(1, t).contiguous(), gru.weight_ih, gru.bias_ih);
      Tensor gh = linear(h, gru.weight_hh, gru.bias_hh);
      Tensor r = sigmoid(chunk(gx, 0) + chunk(gh, 0)), z = sigmoid(chunk(gx, 1) + chunk(gh, 1));
      Tensor n = tanh(chunk(gx, 2) + r * chunk(gh, 2));
      h = (-z + 1.0f) * n + z * h;
      hs.push_back(h.unsqueeze(1));
    }
    REQUIRE(max_abs_diff(gru.forward(x), concat(hs, 1)) < 1e-5f);
  }
}

TEST_CASE("whole-sequence LSTM/GRU (hand-written BPTT) equal the per-step composite, gradients too",
          "[layers][recurrent]") {
  Generator gen(12);
  const int64_t B = 3, T = 6, D = 4, H = 5;
  Tensor x = randn({B, T, D}, gen), dout = randn({B, T, H}, gen);
  for (const int64_t G : {4, 3}) {
    SECTION(G == 4 ? "LSTM" : "GRU") {
      std::vector<Tensor> params = {randn({G * H, D}, gen), randn({G * H, H}, gen), randn({G * H}, gen),
                                    randn({G * H}, gen)};  // w_ih, w_hh, b_ih, b_hh; scale 1 to exercise saturation
      auto run = [&](bool fused) {
        Tensor xi = x.clone().set_requires_grad();
        std::vector<Tensor> p;
        for (auto& t : params) p.push_back(t.clone().set_requires_grad());
        Tensor y;
        if (fused) {
          y = G == 4 ? lstm_sequence(xi, p[0], p[1], p[2], p[3]) : gru_sequence(xi, p[0], p[1], p[2], p[3]);
        } else {  // the composite: per-step linear layers and the fused pointwise cells
          Tensor h = Tensor::zeros({B, H}), c = Tensor::zeros({B, H});
          std::vector<Tensor> hs;
          for (int64_t t = 0; t < T; ++t) {
            Tensor xt = xi.select(1, t);
            if (G == 4) {
              Tensor gates = linear(xt, p[0], p[2]) + linear(h, p[1], p[3]);
              c = lstm_cell_state(gates, c);
              h = lstm_cell_output(gates, c);
            } else {
              h = gru_cell(linear(xt, p[0], p[2]), linear(h, p[1], p[3]), h);
            }
            hs.push_back(h.unsqueeze(1));
          }
          y = concat(hs, 1);
        }
        y.backward(dout);
        std::vector<Tensor> out = {y.detach(), xi.grad()};
        for (auto& t : p) out.push_back(t.grad());
        return out;
      };
      auto fused = run(true), composite = run(false);
      const char* names[] = {"y", "grad x", "grad w_ih", "grad w_hh", "grad b_ih", "grad b_hh"};
      for (size_t i = 0; i < fused.size(); ++i) test::require_close(fused[i], composite[i], 1e-5, 1e-4, names[i]);
    }
  }
}

TEST_CASE("fused LSTM, GRU and causal attention: same bits on every run (fixed thread count)",
          "[layers][recurrent][attention]") {
  Generator gen(13);
  LSTM lstm(8, 16, {}, gen);
  GRU gru(8, 16, {}, gen);
  CausalSelfAttention attn(8, 2, gen);
  Tensor x = randn({4, 33, 8}, gen);
  for (Module* m : std::initializer_list<Module*>{&lstm, &gru, &attn}) {
    auto run = [&] {
      m->zero_grad();
      Tensor xi = x.clone().set_requires_grad();
      Tensor y = m->forward(xi);
      y.backward(y.detach());  // loss = |y|^2 / 2
      std::vector<float> bits = y.to_vector(), gx = xi.grad().to_vector();
      bits.insert(bits.end(), gx.begin(), gx.end());
      for (auto& p : m->parameters()) {
        auto g = p.grad().to_vector();
        bits.insert(bits.end(), g.begin(), g.end());
      }
      return bits;
    };
    INFO(m->name());
    REQUIRE(run() == run());
  }
}

TEST_CASE("LSTM and GRU with every cell norm: gradient check", "[layers][recurrent]") {
  Generator gen(6);
  const int64_t B = 4, T = 3, D = 3, H = 4;
  for (const std::string norm : {"none", "ln", "rms", "bn"}) {
    RecurrentOptions opt;
    opt.norm = norm;
    opt.max_steps = 2;  // bn: step 2 shares the last row of statistics
    GradcheckOptions gc;
    gc.max_checks = 64;
    SECTION("LSTM " + norm) {
      LSTM lstm(D, H, opt, gen);
      Tensor x = randn({B, T, D}, gen).set_requires_grad();
      require_module_gradcheck(lstm, x, gc);
      lstm.eval();  // bn: per-step running statistics; the eval path needs its own check
      require_module_gradcheck(lstm, x, gc);
    }
    SECTION("GRU " + norm) {
      GRU gru(D, H, opt, gen);
      Tensor x = randn({B, T, D}, gen).set_requires_grad();
      require_module_gradcheck(gru, x, gc);
      gru.eval();
      require_module_gradcheck(gru, x, gc);
    }
  }
}

TEST_CASE("recurrent layers: parameter layout, init range and errors", "[layers][recurrent]") {
  Generator gen(7);
  LSTM lstm(128, 256, {}, gen);
  auto params = lstm.named_parameters();
  REQUIRE(params.size() == 4);
  CHECK(params[0].first == "weight_ih");
  CHECK(lstm.weight_ih.shape() == Shape{1024, 128});
  CHECK(lstm.weight_hh.shape() == Shape{1024, 256});
  float bound = 0;
  for (auto& p : lstm.parameters())
    for (float v : p.to_vector()) bound = std::max(bound, std::abs(v));
  CHECK(bound <= 1.0f / 16.0f);  // U(-1/sqrt(256), 1/sqrt(256))
  CHECK(bound > 0.06f);
  RecurrentOptions bn;
  bn.norm = "bn";
  LSTM lstm_bn(3, 4, bn, gen);
  for (auto& [name, p] : lstm_bn.named_parameters())
    if (name == "norm_x.weight" || name == "norm_h.weight" || name == "norm_c.weight")
      for (float v : p.to_vector()) CHECK(v == Approx(0.1f));  // Cooijmans et al.'s gamma init
  REQUIRE_THROWS_WITH(lstm.forward(Tensor::zeros({2, 5, 3})), Catch::Contains("LSTM(128, 256)") &&
                                                                  Catch::Contains("[2, 5, 3]"));
  RecurrentOptions bad;
  bad.norm = "gn";
  REQUIRE_THROWS_WITH(GRU(3, 4, bad, gen), Catch::Contains("GRU") && Catch::Contains("gn"));
}

// ---- attention and transformer ----

TEST_CASE("causal self-attention: gradient check and causality", "[layers][attention]") {
  Generator gen(8);
  const int64_t B = 2, T = 5, D = 8;
  CausalSelfAttention attn(D, 2, gen);
  Tensor x = randn({B, T, D}, gen).set_requires_grad();
  require_module_gradcheck(attn, x);

  NoGradGuard no_grad;
  Tensor y = attn.forward(x);
  Tensor x2 = x.clone();
  for (int64_t d = 0; d < D; ++d) x2.data()[(0 * T + 3) * D + d] += 1.0f;  // change token 3 of sequence 0
  Tensor y2 = attn.forward(x2);
  // Tokens 0..2 cannot see token 3: bit-identical outputs. Tokens 3, 4 do see it.
  REQUIRE(max_abs_diff(y.slice(1, 0, 3), y2.slice(1, 0, 3)) == 0.0f);
  REQUIRE(max_abs_diff(y.slice(1, 3, 5), y2.slice(1, 3, 5)) > 1e-3f);
  REQUIRE_THROWS_WITH(CausalSelfAttention(10, 3, gen), Catch::Contains("heads=3") && Catch::Contains("10"));
  REQUIRE_THROWS_WITH(attn.forward(Tensor::zeros({2, 5, 6})), Catch::Contains("[2, 5, 6]"));
}

TEST_CASE("causal self-attention equals the reference's written-out form for one head", "[layers][attention]") {
  Generator gen(9);
  const int64_t T = 4, D = 3;
  CausalSelfAttention attn(D, 1, gen);
  Tensor x = randn({1, T, D}, gen);
  Tensor qkv = linear(x.select(0, 0).contiguous(), attn.qkv->weight, attn.qkv->bias);  // [T, 3D]
  Tensor q = qkv.slice(1, 0, D).contiguous(), k = qkv.slice(1, D, 2 * D).contiguous(),
         v = qkv.slice(1, 2 * D, 3 * D).contiguous();
  // Row by row: token i attends to 0..i only.
  std::vector<Tensor> rows;
  for (int64_t i = 0; i < T; ++i) {
    Tensor s = mul(matmul(q.slice(0, i, i + 1), k.slice(0, 0, i + 1).transpose(0, 1)), 1.0f / std::sqrt(3.0f));
    rows.push_back(matmul(softmax(s, -1), v.slice(0, 0, i + 1).contiguous()));
  }
  Tensor expected = linear(concat(rows, 0), attn.proj->weight, attn.proj->bias).unsqueeze(0);
  REQUIRE(max_abs_diff(attn.forward(x), expected) < 1e-5f);
}

TEST_CASE("Transformer block, pre-LN and post-LN, every token norm: gradient check", "[layers][transformer]") {
  Generator gen(10);
  const int64_t B = 2, T = 3, D = 4;
  for (const std::string norm : {"ln", "rms", "bn", "none"}) {
    for (bool pre : {true, false}) {
      SECTION(norm + (pre ? " pre-LN" : " post-LN")) {
        NormOptions n;
        n.name = norm;
        TransformerBlock block(D, 2, n, pre, 0.0f, gen);
        Tensor x = randn({B, T, D}, gen).set_requires_grad();
        GradcheckOptions gc;
        gc.max_checks = 48;
        require_module_gradcheck(block, x, gc);
      }
    }
  }
}

TEST_CASE("Transformer block: pre-LN and post-LN are the formulas they claim", "[layers][transformer]") {
  Generator gen(11);
  NormOptions ln;
  ln.name = "ln";
  TransformerBlock block(8, 2, ln, true, 0.0f, gen);
  Tensor x = randn({2, 3, 8}, gen);
  auto mlp = [&](const Tensor& v) { return block.fc2->forward(gelu(block.fc1->forward(v))); };
  Tensor y = x + block.attn->forward(block.norm1->forward(x));
  Tensor pre = y + mlp(block.norm2->forward(y));
  REQUIRE(max_abs_diff(block.forward(x), pre) == 0.0f);
  block.pre_ln = false;
  Tensor z = block.norm1->forward(x + block.attn->forward(x));
  Tensor post = block.norm2->forward(z + mlp(z));
  REQUIRE(max_abs_diff(block.forward(x), post) == 0.0f);
}

// ---- PyTorch fixtures (scripts/make_layer_fixtures.py) ----

namespace {

// Loads a case's parameters into `m` by normlab name, runs forward and backward(dout), and
// compares the output and the gradients of x and of every parameter with PyTorch's.
void require_matches_fixture(Module& m, const TensorFile& f, const std::string& c) {
  auto params = m.named_parameters();
  for (auto& [name, p] : params) Tensor(p).copy_(f.get(c + "." + name));
  m.zero_grad();
  Tensor x = f.get(c + ".x").clone().set_requires_grad();
  Tensor y = m.forward(x);
  test::require_close(y, f.get(c + ".out"), 1e-5, 1e-4, c + " " + m.name() + " output");
  y.backward(f.get(c + ".dout"));
  test::require_close(x.grad(), f.get(c + ".grad_x"), 1e-5, 1e-4, c + " grad_x");
  for (auto& [name, p] : params) test::require_close(p.grad(), f.get(c + ".grad_" + name), 1e-5, 1e-4, c + " grad_" + name);
}

}  // namespace

TEST_CASE("LSTM and GRU match torch.nn.LSTM / nn.GRU (outputs and all gradients)", "[layers][recurrent][fixtures]") {
  for (const std::string kind : {"lstm", "gru"}) {
    TensorFile f = test::load_fixture("layers/" + kind + ".safetensors");
    REQUIRE(test::fixture_cases(f).size() == 3);
    for (const auto& c : test::fixture_cases(f)) {
      auto p = test::case_params(f, c);
      const int64_t D = p["D"], H = p["H"];
      if (kind == "lstm") {
        LSTM m(D, H);
        require_matches_fixture(m, f, c);
      } else {
        GRU m(D, H);
        require_matches_fixture(m, f, c);
      }
    }
  }
}

TEST_CASE("attention and the pre-LN block match the reference benchmark's PyTorch Block", "[layers][attention][fixtures]") {
  TensorFile fa = test::load_fixture("layers/attention.safetensors");
  TensorFile fb = test::load_fixture("layers/block.safetensors");
  REQUIRE(test::fixture_cases(fa).size() == 3);
  REQUIRE(test::fixture_cases(fb).size() == 3);
  for (const auto& c : test::fixture_cases(fa)) {
    auto p = test::case_params(fa, c);
    CausalSelfAttention attn(p["D"].get<int64_t>(), p["heads"].get<int64_t>());
    require_matches_fixture(attn, fa, c);
  }
  NormOptions ln;
  ln.name = "ln";
  for (const auto& c : test::fixture_cases(fb)) {
    auto p = test::case_params(fb, c);
    TransformerBlock block(p["D"].get<int64_t>(), p["heads"].get<int64_t>(), ln, /*pre_ln=*/true);
    require_matches_fixture(block, fb, c);
  }
}
