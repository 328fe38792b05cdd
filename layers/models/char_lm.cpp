// normlab models: character-level language models, ids [B, T] -> logits [B, T, vocab].
//
//   lstm / gru   embedding(V -> embed_dim) - LSTM/GRU(embed_dim -> hidden_size) - linear(hidden -> V)
//                (the reference's CharLSTM: V=65, 128, 256; 420,289 parameters for the LSTM).
//                The norm name picks the cell variant (none, ln, rms, bn; see recurrent.hpp).
//   transformer  token embedding + learned positional embedding (context positions)
//                - `layers` TransformerBlocks (d_model, heads, MLP 4x, GELU)
//                - final norm (pre-LN only: a post-LN block already ends in a norm)
//                - untied linear head. The reference's CharTransformer: V=65, context 64,
//                d 128, 4 heads, 2 blocks; 421,697 parameters with LayerNorm.
// With dropout p > 0: after the embedding, inside each block (transformer), before the head.
#include <algorithm>

#include <fmt/format.h>

#include "layers/dropout.hpp"
#include "layers/embedding.hpp"
#include "layers/linear.hpp"
#include "layers/models/model.hpp"
#include "layers/recurrent.hpp"
#include "layers/sequential.hpp"
#include "layers/transformer.hpp"

namespace nl {

namespace {

// Checks ids are [B, T] with T <= max_t (0: no limit); returns T.
int64_t check_ids(const std::string& model, const std::vector<int32_t>& ids, const Shape& shape, int64_t max_t) {
  NL_CHECK(shape.size() == 2 && shape[0] > 0 && shape[1] > 0, model, ": expected ids [B, T], got shape ", shape);
  NL_CHECK(static_cast<int64_t>(ids.size()) == shape_numel(shape), model, ": ", ids.size(),
           " ids do not fill shape ", shape);
  NL_CHECK(max_t == 0 || shape[1] <= max_t, model, ": sequence length ", shape[1], " exceeds the context ", max_t);
  return shape[1];
}

class CharRNN : public Model {
 public:
  CharRNN(const ModelOptions& o, const NormOptions& norm, bool lstm) : Model(o), kind_(lstm ? "lstm" : "gru") {
    NL_CHECK(o.vocab_size > 0 && o.embed_dim > 0 && o.hidden_size > 0, kind_,
             ": vocab_size, embed_dim and hidden_size must be positive");
    const auto names = recurrent_norm_names();
    NL_CHECK(std::find(names.begin(), names.end(), norm.name) != names.end(), kind_, ": norm '", norm.name,
             "' has no recurrent variant; use none, ln, rms or bn");
    RecurrentOptions r;
    r.norm = norm.name;
    r.eps = norm.eps;
    r.momentum = norm.momentum;
    r.stat_batch = norm.stat_batch;
    r.max_steps = o.max_steps;
    emb_ = register_module("emb", std::make_shared<Embedding>(o.vocab_size, o.embed_dim, gen_));
    if (lstm)
      rnn_ = register_module("lstm", std::make_shared<LSTM>(o.embed_dim, o.hidden_size, r, gen_));
    else
      rnn_ = register_module("gru", std::make_shared<GRU>(o.embed_dim, o.hidden_size, r, gen_));
    if (o.dropout > 0.0f) drop_ = register_module("dropout", std::make_shared<Dropout>(o.dropout, gen_));
    head_ = register_module("head", std::make_shared<Linear>(o.hidden_size, o.vocab_size, true, gen_));
  }

  Tensor forward_ids(const std::vector<int32_t>& ids, const Shape& shape) override {
    check_ids(name(), ids, shape, 0);
    Tensor x = drop(emb_->forward_ids(ids, shape));  // [B, T, E]
    return head_->forward(drop(rnn_->forward(x)));   // [B, T, V]
  }
  bool is_language_model() const override { return true; }
  std::string name() const override { return fmt::format("{}({})", kind_, rnn_ ? rnn_->name() : ""); }

 private:
  Tensor drop(const Tensor& x) { return drop_ ? drop_->forward(x) : x; }
  std::string kind_;
  std::shared_ptr<Embedding> emb_;
  std::shared_ptr<Module> rnn_, drop_, head_;
};

class CharTransformer : public Model {
 public:
  CharTransformer(const ModelOptions& o, const NormOptions& norm) : Model(o), norm_name_(norm.name) {
    NL_CHECK(o.vocab_size > 0 && o.context > 0 && o.d_model > 0 && o.layers > 0, "transformer: vocab_size, context, ",
             "d_model and layers must be positive");
    NL_CHECK(o.heads > 0 && o.d_model % o.heads == 0, "transformer: heads=", o.heads, " must divide d_model=",
             o.d_model);
    tok_ = register_module("tok", std::make_shared<Embedding>(o.vocab_size, o.d_model, gen_));
    pos_ = register_module("pos", std::make_shared<Embedding>(o.context, o.d_model, gen_));
    if (o.dropout > 0.0f) drop_ = register_module("dropout", std::make_shared<Dropout>(o.dropout, gen_));
    blocks_ = register_module("blocks", std::make_shared<Sequential>());
    for (int64_t l = 0; l < o.layers; ++l)
      blocks_->append(std::make_shared<TransformerBlock>(o.d_model, o.heads, norm, o.pre_ln, o.dropout, gen_));
    if (o.pre_ln) norm_f_ = register_module("norm_f", make_norm(norm, {o.d_model}, NormSite::tokens));
    head_ = register_module("head", std::make_shared<Linear>(o.d_model, o.vocab_size, true, gen_));
    positions_.resize(o.context);
    for (int64_t t = 0; t < o.context; ++t) positions_[t] = static_cast<int32_t>(t);
  }

  Tensor forward_ids(const std::vector<int32_t>& ids, const Shape& shape) override {
    const int64_t T = check_ids(name(), ids, shape, options_.context);
    std::vector<int32_t> pos(positions_.begin(), positions_.begin() + T);
    Tensor x = add(tok_->forward_ids(ids, shape), pos_->forward_ids(pos, {T}));  // [B, T, D] + [T, D]
    if (drop_) x = drop_->forward(x);
    x = blocks_->forward(x);
    if (norm_f_) x = norm_f_->forward(x);
    return head_->forward(x);
  }
  bool is_language_model() const override { return true; }
  std::string name() const override {
    return fmt::format("transformer({} blocks, d={}, heads={}, {}, norm {})", options_.layers, options_.d_model,
                       options_.heads, options_.pre_ln ? "pre-LN" : "post-LN", norm_name_);
  }

 private:
  std::string norm_name_;
  std::shared_ptr<Embedding> tok_, pos_;
  std::shared_ptr<Sequential> blocks_;
  std::shared_ptr<Module> drop_, norm_f_, head_;
  std::vector<int32_t> positions_;
};

}  // namespace

std::shared_ptr<Model> make_char_lstm(const ModelOptions& o, const NormOptions& norm) {
  return std::make_shared<CharRNN>(o, norm, true);
}
std::shared_ptr<Model> make_char_gru(const ModelOptions& o, const NormOptions& norm) {
  return std::make_shared<CharRNN>(o, norm, false);
}
std::shared_ptr<Model> make_char_transformer(const ModelOptions& o, const NormOptions& norm) {
  return std::make_shared<CharTransformer>(o, norm);
}

}  // namespace nl
