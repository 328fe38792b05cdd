// normlab apps: `normlab report DIR [--results RESULTS]` reads a sweep (sweep.json + one run
// directory per run, in DIR or, for runs finished only there, in RESULTS) and writes the
// figures a paper would show, as SVG, with report.md and a self-contained report.html
// (report.md rendered by apps/markdown.hpp, SVGs inlined):
//   error_vs_batch.svg          final test error vs batch size (log2 axis): mean over seeds, min-max band
//   error_vs_stat_batch_b<B>.svg  the same vs statistics batch at batch size B (--stat-batch-sizes)
//   curves_b<B>.svg             train loss vs epochs, one line per norm, at each batch size
//   curves_<norm>.svg           the same per norm, one line per batch size
//   test_error_b<B>.svg         test error after each epoch (when runs evaluated every epoch)
//   loss_vs_time_b<B>.svg       train loss vs wall-clock seconds (speed claims, e.g. RMSNorm)
//   bn_eval_modes.svg           BN-family accuracy with running vs batch vs Precise-BN statistics
//   step_time.svg               milliseconds per step per norm and batch size
//   norm_outputs_<run>.svg      runs with --diagnostics (first seed): each norm layer's output (the
//                               input of the activation after it), median with the 15-85 band (BN paper Fig. 1b,c)
//   bn_stat_noise.svg           BN family with --diagnostics: |mu_B - mu| / sigma and sigma_B^2 / sigma^2
//                               against the statistics batch (mean over the second half of training)
//   brn_clipping.svg            Batch Renorm runs with --diagnostics (first seed): the fraction of channels
//                               whose r or d was clipped, over training (mean over the layers)
//   grad_norm_layers_<run>.svg  runs with --diagnostics (first seed): per norm layer, the gradient norms
//                               at its output and input and of its weight, at the first and last logged step
//   grad_norm_pre_post_ln.svg   Transformer runs of both kinds (first seed): the same per layer at the
//                               first logged step, Pre-LN against Post-LN (Xiong et al. 2020, Fig. 3)
// Tables give mean +/- std (n = seeds that finished) per norm and batch size, and per
// statistics batch when that is an axis.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apps/commands.hpp"
#include "apps/markdown.hpp"
#include "apps/run_dir.hpp"
#include "apps/svg_plot.hpp"
#include "apps/sweep.hpp"
#include "core/tensor.hpp"

namespace nl {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct Table {  // a CSV file: header names and numeric rows (non-numbers become NaN)
  std::vector<std::string> columns;
  std::vector<std::vector<double>> rows;
  int column(const std::string& name) const {
    for (size_t i = 0; i < columns.size(); ++i)
      if (columns[i] == name) return static_cast<int>(i);
    return -1;
  }
};

Table read_csv(const fs::path& path) {
  Table t;
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return t;
  std::stringstream header(line);
  std::string cell;
  while (std::getline(header, cell, ',')) t.columns.push_back(cell);
  while (std::getline(in, line)) {
    std::vector<double> row;
    std::stringstream ss(line);
    while (std::getline(ss, cell, ',')) {
      char* end = nullptr;
      double v = std::strtod(cell.c_str(), &end);
      row.push_back(end != cell.c_str() ? v : NAN);
    }
    if (!row.empty()) t.rows.push_back(std::move(row));
  }
  return t;
}

// diagnostics.csv (train --diagnostics): step,layer,quantity,value.
struct DiagnosticRow {
  double step;
  std::string layer, quantity;
  double value;
};
std::vector<DiagnosticRow> read_diagnostics(const fs::path& path) {
  std::vector<DiagnosticRow> out;
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return out;  // missing file or header only
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string step, layer, quantity, value;
    if (std::getline(ss, step, ',') && std::getline(ss, layer, ',') && std::getline(ss, quantity, ',') &&
        std::getline(ss, value, ','))
      out.push_back({std::strtod(step.c_str(), nullptr), layer, quantity, std::strtod(value.c_str(), nullptr)});
  }
  return out;
}

struct Run : PlannedRun {
  fs::path dir;
  json summary, eval_modes;
  Table metrics, evals;
  std::vector<DiagnosticRow> diagnostics;
  json config;
  bool ok() const { return summary.is_object() && summary.value("status", "") == "ok"; }
  bool diverged() const { return summary.is_object() && summary.value("status", "").rfind("diverged", 0) == 0; }
  double number(const char* key) const {
    return summary.is_object() && summary.contains(key) && summary[key].is_number() ? summary[key].get<double>() : NAN;
  }
  // Not on the --stat-batch axis, or on it at the whole batch (gbn, whose ghost batch is its own
  // setting and not that axis, belongs to the norm x batch-size table too).
  bool full_batch_statistics() const { return stat_batch == 0 || stat_batch == batch_size; }
  std::string short_label() const {
    return stat_batch > 0 ? fmt::format("{} sb{}", label, stat_batch) : label;
  }
};

// Over the seeds that finished (NaN = left out).
struct Summary {
  double mean = NAN, std = NAN, min = NAN, max = NAN;
  int n = 0;
};
Summary summarize(const std::vector<double>& v) {
  Summary m;
  std::vector<double> finite;
  for (double x : v)
    if (std::isfinite(x)) finite.push_back(x);
  m.n = static_cast<int>(finite.size());
  if (finite.empty()) return m;
  double s = 0;
  for (double x : finite) s += x;
  m.mean = s / m.n;
  double ss = 0;
  for (double x : finite) ss += (x - m.mean) * (x - m.mean);
  m.std = m.n > 1 ? std::sqrt(ss / (m.n - 1)) : 0.0;
  m.min = *std::min_element(finite.begin(), finite.end());
  m.max = *std::max_element(finite.begin(), finite.end());
  return m;
}

// Curve (x, y) of a metrics column, smoothed by a moving average and thinned to ~300 points.
std::vector<std::pair<double, double>> curve(const Table& t, const std::string& x_col, const std::string& y_col) {
  std::vector<std::pair<double, double>> out;
  const int xi = t.column(x_col), yi = t.column(y_col);
  if (xi < 0 || yi < 0 || t.rows.empty()) return out;
  const size_t n = t.rows.size();
  const size_t window = std::max<size_t>(1, n / 50);
  const size_t every = std::max<size_t>(1, n / 300);
  double acc = 0;
  size_t count = 0;
  std::vector<double> ys(n);
  for (size_t i = 0; i < n; ++i) {  // trailing moving average
    acc += t.rows[i][yi];
    ++count;
    if (count > window) acc -= t.rows[i - window][yi], --count;
    ys[i] = acc / count;
  }
  for (size_t i = 0; i < n; i += every) out.emplace_back(t.rows[i][xi], ys[i]);
  if ((n - 1) % every) out.emplace_back(t.rows[n - 1][xi], ys[n - 1]);
  return out;
}

// ---------------------------------------------------------------- the sweep, read once

struct Sweep {
  fs::path dir;
  SweepPlan plan;
  std::vector<std::string> variants;  // labels, in plan order
  std::vector<Run> runs;
  bool language_model = false;
  std::string metric_name;
  int from_results = 0;  // runs read from --results

  // The headline number of a run: test error in % for classifiers, validation loss for LMs.
  double headline(const Run& r) const {
    if (!r.ok()) return NAN;
    return language_model ? r.number("test_loss") : 100.0 * (1.0 - r.number("test_accuracy"));
  }
  template <typename Keep>
  std::vector<const Run*> select(Keep keep) const {
    std::vector<const Run*> out;
    for (const auto& r : runs)
      if (keep(r)) out.push_back(&r);
    return out;
  }
  // (variant, batch size) with statistics over the whole batch: the norm x batch-size table.
  std::vector<const Run*> at_batch(const std::string& v, int b) const {
    return select([&](const Run& r) { return r.label == v && r.batch_size == b && r.full_batch_statistics(); });
  }
  std::vector<const Run*> at_stat_batch(const std::string& v, int b, int sb) const {
    return select([&](const Run& r) { return r.label == v && r.batch_size == b && r.stat_batch == sb; });
  }
  std::vector<const Run*> first_seed(const std::string& v, int b) const {
    return select([&](const Run& r) { return r.label == v && r.batch_size == b && r.seed == plan.seeds.front(); });
  }
  Summary headline_of(const std::vector<const Run*>& rs) const {
    std::vector<double> vals;
    for (const Run* r : rs) vals.push_back(headline(*r));
    return summarize(vals);
  }
  bool on_stat_axis(const std::string& v) const {
    for (const auto& r : runs)
      if (r.label == v && r.stat_batch > 0) return true;
    return false;
  }
  bool stat_axis() const { return plan.stat_batches.size() > 1; }
  std::vector<int> stat_batches_at(int b) const {
    std::vector<int> out;
    for (int sb : plan.stat_batches)
      if (sb <= b) out.push_back(sb);
    return out;
  }
};

Sweep load_sweep(const fs::path& dir, const std::string& results_dir) {
  fs::path plan_file = dir / "sweep.json";
  if (!fs::exists(plan_file) && !results_dir.empty()) plan_file = fs::path(results_dir) / "sweep.json";
  const json plan_json = read_json_or_null(plan_file);
  NL_CHECK(plan_json.is_object(), "report: ", (dir / "sweep.json").string(), " is missing or not valid JSON (is ",
           dir.string(), " a sweep directory?", results_dir.empty() ? "" : " nor is there one in " + results_dir, ")");
  Sweep s;
  s.dir = dir;
  s.plan = plan_from_json(plan_json, dir.string());
  // Committed results may hold parts of the sweep that DIR does not (other seeds, norms, batches).
  const json results_plan = results_dir.empty() ? json() : read_json_or_null(fs::path(results_dir) / "sweep.json");
  if (results_plan.is_object() && plan_file != fs::path(results_dir) / "sweep.json")
    s.plan = merge_plans(s.plan, plan_from_json(results_plan, results_dir));
  s.plan.results_dir = results_dir;
  for (const auto& v : s.plan.variants) s.variants.push_back(v.label);
  for (const PlannedRun& p : planned_runs(s.plan)) {
    Run r;
    static_cast<PlannedRun&>(r) = p;
    r.dir = run_location(s.plan, r.name);
    s.from_results += r.dir != dir / r.name;
    r.summary = read_json_or_null(r.dir / "summary.json");
    r.eval_modes = read_json_or_null(r.dir / "eval_modes.json");
    r.metrics = read_csv(r.dir / "metrics.csv");
    r.evals = read_csv(r.dir / "eval.csv");
    r.diagnostics = read_diagnostics(r.dir / "diagnostics.csv");
    if (!r.diagnostics.empty()) r.config = read_json_or_null(r.dir / "config.json");
    s.language_model = s.language_model || (r.summary.is_object() && r.summary.contains("tokens_per_second"));
    s.runs.push_back(std::move(r));
  }
  s.metric_name = s.language_model ? "validation loss" : "test error (%)";
  return s;
}

// ---------------------------------------------------------------- figures

struct Figure {
  std::string file, svg, caption;
};

// Mean over seeds with a min-max band (drawn only when there is more than one seed).
void add_point(PlotSeries& s, double x, const Summary& m) {
  if (m.n == 0) return;
  s.points.emplace_back(x, m.mean);
  s.band.emplace_back(m.min, m.max);
}

std::string spread_words(const Sweep& s) {
  return s.plan.seeds.size() > 1
             ? fmt::format("line = mean over {} seeds, band and bars = min to max over the seeds", s.plan.seeds.size())
             : "one seed";
}

std::vector<Figure> error_vs_batch(const Sweep& s) {
  if (s.plan.batch_sizes.size() <= 1) return {};
  LinePlot p;
  p.title = fmt::format("Final {} vs batch size", s.metric_name);
  p.x_label = "batch size (log2)";
  p.y_label = s.metric_name;
  p.log2_x = true;
  for (const auto& v : s.variants) {
    PlotSeries series{v, {}, {}};
    for (int b : s.plan.batch_sizes) add_point(series, b, s.headline_of(s.at_batch(v, b)));
    if (s.plan.seeds.size() <= 1) series.band.clear();
    p.series.push_back(std::move(series));
  }
  return {{"error_vs_batch.svg", p.to_svg(),
           fmt::format("Final {} against batch size ({}); statistics over the whole batch. Diverged runs are left "
                       "out (see the table).",
                       s.metric_name, spread_words(s))}};
}

// One figure per batch size: the BN family against its statistics batch; the norms that take
// none ran once at that batch size and are drawn flat (dashed) across the axis.
std::vector<Figure> error_vs_stat_batch(const Sweep& s) {
  std::vector<Figure> out;
  if (!s.stat_axis()) return out;
  for (int b : s.plan.batch_sizes) {
    const std::vector<int> sbs = s.stat_batches_at(b);
    if (sbs.size() <= 1) continue;
    LinePlot p;
    p.title = fmt::format("Final {} vs statistics batch, batch {}", s.metric_name, b);
    p.x_label = "statistics batch (log2)";
    p.y_label = s.metric_name;
    p.log2_x = true;
    std::vector<std::string> flat;
    for (const auto& v : s.variants) {
      PlotSeries series{v, {}, {}};
      if (s.on_stat_axis(v)) {
        for (int sb : sbs) add_point(series, sb, s.headline_of(s.at_stat_batch(v, b, sb)));
      } else {
        const Summary m = s.headline_of(s.at_batch(v, b));
        add_point(series, sbs.front(), m);
        add_point(series, sbs.back(), m);
        series.dashed = true;
        flat.push_back(v);
      }
      if (s.plan.seeds.size() <= 1) series.band.clear();
      p.series.push_back(std::move(series));
    }
    std::string caption = fmt::format("Final {} against the statistics batch (BN-family statistics over groups of b "
                                      "examples inside a batch of {}; {}).",
                                      s.metric_name, b, spread_words(s));
    if (!flat.empty())
      caption += fmt::format(" Norms without a statistics batch ({}) ran once per seed at batch {} and are drawn "
                             "flat (dashed) across the axis.",
                             fmt::join(flat, ", "), b);
    out.push_back({fmt::format("error_vs_stat_batch_b{}.svg", b), p.to_svg(), caption});
  }
  return out;
}

// Per batch size: train loss vs epoch (or step), test error per epoch, train loss vs seconds.
std::vector<Figure> curves_per_batch(const Sweep& s) {
  std::vector<Figure> out;
  const int seed = s.plan.seeds.front();
  const std::string x = s.language_model ? "step" : "epoch";
  for (int b : s.plan.batch_sizes) {
    LinePlot p;
    p.title = fmt::format("Training loss, batch {}", b);
    p.x_label = x;
    p.y_label = "train loss (moving average)";
    p.markers = false;
    p.log_y = true;
    LinePlot t = p;
    t.title = fmt::format("Training loss vs time, batch {}", b);
    t.x_label = "seconds";
    LinePlot e;
    e.title = fmt::format("{} after each epoch, batch {}", s.metric_name, b);
    e.x_label = "epoch";
    e.y_label = s.metric_name;
    for (const auto& v : s.variants)
      for (const Run* r : s.first_seed(v, b)) {
        p.series.push_back({r->short_label(), curve(r->metrics, x, "train_loss"), {}});
        t.series.push_back({r->short_label(), curve(r->metrics, "seconds", "train_loss"), {}});
        const int ei = r->evals.column("epoch"), ai = r->evals.column(s.language_model ? "test_loss" : "test_acc");
        if (r->evals.rows.size() <= 1 || ei < 0 || ai < 0) continue;
        PlotSeries series{r->short_label(), {}, {}};
        for (const auto& row : r->evals.rows)
          series.points.emplace_back(row[ei], s.language_model ? row[ai] : 100.0 * (1.0 - row[ai]));
        e.series.push_back(std::move(series));
      }
    out.push_back({fmt::format("curves_b{}.svg", b), p.to_svg(),
                   fmt::format("Training loss of each norm at batch {} (seed {}).", b, seed)});
    if (!e.series.empty())
      out.push_back({fmt::format("test_error_b{}.svg", b), e.to_svg(),
                     fmt::format("{} after each epoch at batch {}.", s.metric_name, b)});
    out.push_back({fmt::format("loss_vs_time_b{}.svg", b), t.to_svg(),
                   fmt::format("Training loss against wall-clock time at batch {}: what a norm's cost does to progress.", b)});
  }
  return out;
}

// Per norm: one training curve per batch size (the GN paper's Fig. 5 style).
std::vector<Figure> curves_per_norm(const Sweep& s) {
  std::vector<Figure> out;
  if (s.plan.batch_sizes.size() <= 1 || s.language_model) return out;
  for (const auto& v : s.variants) {
    LinePlot p;
    p.title = fmt::format("{}: training loss per batch size", v);
    p.x_label = "epoch";
    p.y_label = "train loss (moving average)";
    p.markers = false;
    p.log_y = true;
    for (int b : s.plan.batch_sizes)
      for (const Run* r : s.first_seed(v, b))
        p.series.push_back({r->stat_batch > 0 ? fmt::format("batch {}, sb {}", b, r->stat_batch) : fmt::format("batch {}", b),
                            curve(r->metrics, "epoch", "train_loss"), {}});
    out.push_back({fmt::format("curves_{}.svg", v), p.to_svg(),
                   fmt::format("{}: training loss at each batch size (GN paper, Fig. 5 style).", v)});
  }
  return out;
}

std::vector<Figure> bn_eval_modes(const Sweep& s) {
  BarChart c;
  c.title = "BN-family: test accuracy by statistics used at test time";
  c.value_label = "test accuracy (%)";
  c.series_labels = {"running stats", "batch stats", "Precise BN"};
  c.values.assign(3, {});
  for (const auto& r : s.runs) {
    if (!r.eval_modes.is_object() || r.seed != s.plan.seeds.front()) continue;
    c.categories.push_back(fmt::format("{} b{}", r.short_label(), r.batch_size));
    const char* keys[] = {"running_stats_accuracy", "batch_stats_accuracy", "precise_bn_accuracy"};
    for (int k = 0; k < 3; ++k)
      c.values[k].push_back(r.eval_modes.contains(keys[k]) && r.eval_modes[keys[k]].is_number()
                                ? 100.0 * r.eval_modes[keys[k]].get<double>()
                                : NAN);
  }
  if (c.categories.empty()) return {};
  return {{"bn_eval_modes.svg", c.to_svg(),
           "Test accuracy of BN-family runs evaluated with the running statistics (the default), with the test "
           "batch's own statistics, and with Precise-BN statistics recomputed over training batches. A gap between "
           "the first and the last is BN's train/test discrepancy."}};
}

double ms_per_step(const std::vector<const Run*>& rs) {
  std::vector<double> ms;
  for (const Run* r : rs)
    if (r->ok() && r->number("steps") > 0) ms.push_back(1000.0 * r->number("seconds") / r->number("steps"));
  return summarize(ms).mean;
}

std::vector<Figure> step_time(const Sweep& s) {
  BarChart c;
  c.title = "Time per training step";
  c.value_label = "milliseconds per step";
  for (int b : s.plan.batch_sizes) c.series_labels.push_back(fmt::format("batch {}", b));
  c.categories = s.variants;
  for (int b : s.plan.batch_sizes) {
    std::vector<double> row;
    for (const auto& v : s.variants) row.push_back(ms_per_step(s.at_batch(v, b)));
    c.values.push_back(row);
  }
  return {{"step_time.svg", c.to_svg(),
           "Wall-clock milliseconds per training step (includes data loading and evaluation amortised over the run; "
           "runs of a sweep share the machine)."}};
}

// Each norm layer's output over training: median and the 15-85 percentile band (BN paper, Fig. 1b,c).
// The output, because that is what the activation after the layer sees: with BN it is y = gamma x_hat
// + beta, whose distribution BN holds in place; BN's own input keeps drifting (that is what it undoes).
// With --norm none the layer is NoNorm (the identity), so the same figure shows the pre-activation.
std::vector<Figure> norm_outputs(const Sweep& s) {
  std::vector<Figure> out;
  for (const auto& r : s.runs) {
    if (r.diagnostics.empty() || r.seed != s.plan.seeds.front()) continue;
    std::vector<std::string> layers;  // in the order they ran
    std::map<std::string, std::map<double, std::map<std::string, double>>> at;  // layer -> step -> quantity
    for (const auto& d : r.diagnostics) {
      if (d.quantity.rfind("output_p", 0) != 0) continue;
      if (!at.count(d.layer)) layers.push_back(d.layer);
      at[d.layer][d.step][d.quantity] = d.value;
    }
    if (layers.empty()) continue;
    LinePlot p;
    p.title = fmt::format("{}: what the activation after each norm layer sees", r.name);
    p.x_label = "step";
    p.y_label = "norm output (median, 15-85 percentile band)";
    p.markers = false;
    for (const auto& layer : layers) {
      PlotSeries series{"layer " + layer, {}, {}};
      for (const auto& [step, q] : at[layer]) {
        if (!q.count("output_p50") || !q.count("output_p15") || !q.count("output_p85")) continue;
        series.points.emplace_back(step, q.at("output_p50"));
        series.band.emplace_back(q.at("output_p15"), q.at("output_p85"));
      }
      p.series.push_back(std::move(series));
    }
    out.push_back({fmt::format("norm_outputs_{}.svg", r.name), p.to_svg(),
                   fmt::format("{}: the output of each norm layer (layer = its module path), i.e. the input of the "
                               "activation after it, during training: median and 15th-85th percentiles of at most "
                               "4096 sampled elements (`train --diagnostics`). With `--norm none` it is the "
                               "pre-activation itself. The BN paper's Fig. 1b,c draws these for one sigmoid's input.",
                               r.name)});
  }
  return out;
}

// Mean of a quantity over every layer and the logged steps in the second half of a run
// (the running statistics start at 0 / 1 and need a while to settle).
double late_mean(const Run& r, const std::string& quantity) {
  double last = 0, sum = 0;
  int n = 0;
  for (const auto& d : r.diagnostics) last = std::max(last, d.step);
  for (const auto& d : r.diagnostics)
    if (d.quantity == quantity && d.step > last / 2) sum += d.value, ++n;
  return n > 0 ? sum / n : NAN;
}

// BN-family batch statistics against the running ones, against the statistics batch.
std::vector<Figure> bn_stat_noise(const Sweep& s) {
  LinePlot p;
  p.title = "BN statistics noise vs statistics batch";
  p.x_label = "statistics batch (log2; the batch size without --stat-batch)";
  p.y_label = "mean over channels and layers";
  p.log2_x = true;
  const std::pair<const char*, const char*> quantities[] = {{"bn_mean_shift", "|mu_B - mu| / sigma"},
                                                            {"bn_var_ratio", "sigma_B^2 / sigma^2"}};
  for (const auto& v : s.variants)
    for (const auto& [quantity, words] : quantities) {
      std::map<int, std::vector<double>> by_stat_batch;
      for (const auto& r : s.runs)
        if (r.label == v && !r.diagnostics.empty()) by_stat_batch[r.effective_stat_batch()].push_back(late_mean(r, quantity));
      PlotSeries series{fmt::format("{}: {}", v, words), {}, {}};
      for (const auto& [sb, values] : by_stat_batch) add_point(series, sb, summarize(values));
      if (s.plan.seeds.size() <= 1) series.band.clear();
      if (!series.points.empty()) p.series.push_back(std::move(series));
    }
  if (p.series.empty()) return {};
  return {{"bn_stat_noise.svg", p.to_svg(),
           fmt::format("How far the batch statistics a BN-family layer normalizes with are from its running "
                       "statistics (the ones used at test time): mean over channels of |mu_B - mu| / sigma and of "
                       "sigma_B^2 / sigma^2 (biased batch variance, first statistics group), averaged over the norm "
                       "layers and the logged steps of the second half of training ({}). 0 and 1 = no noise.",
                       spread_words(s))}};
}

// Batch Renorm: the fraction of (statistics group, channel) pairs whose r or d was clipped.
std::vector<Figure> brn_clipping(const Sweep& s) {
  LinePlot p;
  p.title = "Batch Renorm: channels with r or d clipped";
  p.x_label = "step";
  p.y_label = "fraction clipped (mean over the layers)";
  p.markers = false;
  for (const auto& r : s.runs) {
    if (r.diagnostics.empty() || r.seed != s.plan.seeds.front()) continue;
    for (const auto& [quantity, words] : {std::pair<const char*, const char*>{"brn_clip_fraction", "r or d"},
                                          {"brn_r_clip_fraction", "r"},
                                          {"brn_d_clip_fraction", "d"}}) {
      std::map<double, std::vector<double>> at;  // step -> per layer
      for (const auto& d : r.diagnostics)
        if (d.quantity == quantity) at[d.step].push_back(d.value);
      if (at.empty()) continue;
      PlotSeries series{fmt::format("{}: {}", r.short_label(), words), {}, {}};
      series.dashed = std::string(words) != "r or d";
      for (const auto& [step, values] : at) series.points.emplace_back(step, summarize(values).mean);
      p.series.push_back(std::move(series));
    }
  }
  if (p.series.empty()) return {};
  return {{"brn_clipping.svg", p.to_svg(),
           "Batch Renorm (`train --diagnostics`, first seed): the fraction of channels (per statistics group) whose "
           "correction r = sigma_B / sigma or d = (mu_B - mu) / sigma hit its clip r_max or d_max, averaged over the "
           "layers; dashed: r and d on their own. With a warm-up the clips open from r_max = 1, d_max = 0 (all "
           "clipped: plain BN); a fraction near 0 means Batch Renorm acts as BN with running statistics in the loop."}};
}

// Per norm layer, in the order the layers run: (index, value) of a quantity at one logged step.
std::vector<std::pair<double, double>> per_layer(const Run& r, double step, const std::string& quantity) {
  std::vector<std::string> order;
  std::map<std::string, double> value;
  for (const auto& d : r.diagnostics) {
    if (d.step != step) continue;
    if (std::find(order.begin(), order.end(), d.layer) == order.end()) order.push_back(d.layer);
    if (d.quantity == quantity) value[d.layer] = d.value;
  }
  std::vector<std::pair<double, double>> out;
  for (size_t i = 0; i < order.size(); ++i)
    if (value.count(order[i])) out.emplace_back(static_cast<double>(i), value[order[i]]);
  return out;
}

std::pair<double, double> logged_step_range(const Run& r, const std::string& quantity) {
  double first = INFINITY, last = -INFINITY;
  for (const auto& d : r.diagnostics)
    if (d.quantity == quantity) first = std::min(first, d.step), last = std::max(last, d.step);
  return {first, last};
}

const std::pair<const char*, const char*> kGradQuantities[] = {
    {"grad_norm_output", "output"}, {"grad_norm_input", "input"}, {"grad_norm_weight", "weight"}};

// Gradient norm per layer for each run: first logged step solid, last dashed.
std::vector<Figure> grad_norm_layers(const Sweep& s) {
  std::vector<Figure> out;
  for (const auto& r : s.runs) {
    if (r.diagnostics.empty() || r.seed != s.plan.seeds.front()) continue;
    const auto [first, last] = logged_step_range(r, "grad_norm_output");
    if (!std::isfinite(first)) continue;
    LinePlot p;
    p.title = fmt::format("{}: gradient norm per norm layer", r.name);
    p.x_label = "norm layer (index in the order they run)";
    p.y_label = "L2 norm (log10)";
    p.log_y = true;
    for (const auto& [quantity, words] : kGradQuantities)
      for (double step : {first, last}) {
        if (step == last && last == first) continue;
        PlotSeries series{fmt::format("{}, step {}", words, step), per_layer(r, step, quantity), {}};
        series.dashed = step != first;
        if (!series.points.empty()) p.series.push_back(std::move(series));
      }
    out.push_back({fmt::format("grad_norm_layers_{}.svg", r.name), p.to_svg(),
                   fmt::format("{}: per norm layer, the L2 norm of the gradient reaching its output, of the one it "
                               "passes back to its input (its own contribution) and of its gain's gradient, at the "
                               "first logged step (solid: near initialization) and the last (dashed).",
                               r.name)});
  }
  return out;
}

// Xiong et al. 2020, Fig. 3: per-layer gradient norms at initialization, Pre-LN against Post-LN.
std::vector<Figure> grad_norm_pre_post_ln(const Sweep& s) {
  std::vector<const Run*> pre, post;
  for (const auto& r : s.runs) {
    if (r.diagnostics.empty() || r.seed != s.plan.seeds.front() || !r.config.is_object()) continue;
    const json& m = r.config.value("model", json::object());
    if (m.value("name", "") != "transformer" || !std::isfinite(logged_step_range(r, "grad_norm_output").first)) continue;
    (m.value("pre_ln", true) ? pre : post).push_back(&r);
  }
  if (pre.empty() || post.empty()) return {};
  LinePlot p;
  p.title = "Pre-LN vs Post-LN: gradient norm per norm layer";
  p.x_label = "norm layer (index in the order they run; first logged step)";
  p.y_label = "L2 norm (log10)";
  p.log_y = true;
  for (const auto* group : {&pre, &post})
    for (const Run* r : *group)
      for (const auto& [quantity, words] : {kGradQuantities[0], kGradQuantities[1]}) {
        PlotSeries series{fmt::format("{}: {}", r->short_label(), words),
                          per_layer(*r, logged_step_range(*r, quantity).first, quantity), {}};
        series.dashed = std::string(quantity) == "grad_norm_input";
        if (!series.points.empty()) p.series.push_back(std::move(series));
      }
  return {{"grad_norm_pre_post_ln.svg", p.to_svg(),
           "Per norm layer of the Transformer runs (first seed), at the first logged step (log with "
           "`--diagnostics-every 1` for step 1, the initialization): the gradient norm reaching each norm's output "
           "(solid) and the one it passes to its input (dashed). Xiong et al. 2020 (Fig. 3): with Post-LN the "
           "gradient grows toward the output layers, so a large learning rate needs a warm-up; with Pre-LN it is "
           "about the same in every layer."}};
}

// ---------------------------------------------------------------- tables (markdown)

// Runs whose spread exceeds a quarter of their mean (one seed stalled, say) get their range
// after the mean: a mean of values that far apart describes none of them.
std::string cell(const Summary& m, const std::vector<const Run*>& rs) {
  std::string text = m.n == 0 ? "" : m.n > 1 ? fmt::format("{:.2f} +/- {:.2f} (n={})", m.mean, m.std, m.n)
                                             : fmt::format("{:.2f}", m.mean);
  if (m.n > 1 && m.max - m.min > 0.25 * std::abs(m.mean))
    text += fmt::format(" (range {:.2f} to {:.2f})", m.min, m.max);
  int diverged = 0, missing = 0;
  for (const Run* r : rs) diverged += r->diverged(), missing += !r->ok() && !r->diverged();
  if (diverged) text += fmt::format(" ({} diverged)", diverged);
  if (missing) text += fmt::format(" ({} missing)", missing);
  return text;
}

std::string table_header(const std::string& first, const std::vector<std::string>& columns) {
  std::string md = "| " + first + " |";
  for (const auto& c : columns) md += " " + c + " |";
  md += "\n|---|";
  for (size_t i = 0; i < columns.size(); ++i) md += "---|";
  return md + "\n";
}

// One table: rows = variants, columns given by `runs_at(v, k)`; a BN - GN row when both exist.
template <typename RunsAt>
std::string metric_table(const Sweep& s, const std::vector<std::string>& columns, RunsAt runs_at,
                         const std::map<std::string, std::string>& row_notes = {}) {
  std::string md = table_header("norm", columns);
  std::map<std::string, std::vector<double>> means;
  for (const auto& v : s.variants) {
    md += "| " + v + (row_notes.count(v) ? " " + row_notes.at(v) : "") + " |";
    for (size_t k = 0; k < columns.size(); ++k) {
      const auto rs = runs_at(v, k);
      const Summary m = s.headline_of(rs);
      means[v].push_back(m.mean);
      md += " " + cell(m, rs) + " |";
    }
    md += "\n";
  }
  if (means.count("bn") && means.count("gn")) {
    md += "| **BN - GN** |";
    for (size_t k = 0; k < columns.size(); ++k) {
      const double d = means["bn"][k] - means["gn"][k];
      md += std::isfinite(d) ? fmt::format(" {:+.2f} |", d) : " |";
    }
    md += "\n";
  }
  return md;
}

std::vector<std::string> batch_columns(const std::vector<int>& sizes, const char* prefix) {
  std::vector<std::string> out;
  for (int b : sizes) out.push_back(fmt::format("{}={}", prefix, b));
  return out;
}

std::string tables_md(const Sweep& s) {
  const auto& bs = s.plan.batch_sizes;
  std::string md = metric_table(s, batch_columns(bs, "B"), [&](const std::string& v, size_t k) { return s.at_batch(v, bs[k]); });
  if (!s.plan.stat_batches.empty())  // even one value: the BN-family runs are only in these tables
    for (int b : bs) {
      const std::vector<int> sbs = s.stat_batches_at(b);
      if (sbs.empty()) continue;
      std::map<std::string, std::string> notes;
      for (const auto& v : s.variants)
        if (!s.on_stat_axis(v)) notes[v] = "(one run, flat)";
      md += fmt::format("\n{} at batch {} per statistics batch b (BN-family statistics over groups of b examples; "
                        "norms marked flat take no statistics batch and ran once at batch {}):\n\n",
                        s.metric_name, b, b);
      md += metric_table(
          s, batch_columns(sbs, "b"),
          [&](const std::string& v, size_t k) { return s.on_stat_axis(v) ? s.at_stat_batch(v, b, sbs[k]) : s.at_batch(v, b); },
          notes);
    }
  if (std::find(s.variants.begin(), s.variants.end(), "none") != s.variants.end()) {
    md += "\nTime per step relative to no normalization (same batch size):\n\n" + table_header("norm", batch_columns(bs, "B"));
    for (const auto& v : s.variants) {
      md += "| " + v + " |";
      for (int b : bs) {
        const double ratio = ms_per_step(s.at_batch(v, b)) / ms_per_step(s.at_batch("none", b));
        md += std::isfinite(ratio) ? fmt::format(" {:.2f}x |", ratio) : " |";
      }
      md += "\n";
    }
  }
  return md;
}

std::string report_md(const Sweep& s, const std::vector<Figure>& figures) {
  std::string md = "# normlab report: " + s.dir.filename().string() + "\n\n";
  if (!s.plan.description.empty()) md += s.plan.description + "\n\n";
  md += s.plan.seeds.size() > 1
            ? fmt::format("Headline metric: **{}**, mean +/- std over seeds {} (n = the seeds that finished).",
                          s.metric_name, fmt::join(s.plan.seeds, ","))
            : fmt::format("Headline metric: **{}** (seed {}).", s.metric_name, s.plan.seeds.front());
  if (!s.plan.stat_batches.empty())
    md += fmt::format(" Statistics batches (`--stat-batch`): {}.", fmt::join(s.plan.stat_batches, ", "));
  md += " `diverged` = the loss became NaN/Inf.\n\n";
  md += tables_md(s) + "\n";
  for (const auto& f : figures) md += fmt::format("![{}]({})\n\n*{}*\n\n", f.file, f.file, f.caption);
  md += fmt::format("Runs: `{}/<norm>-b<batch>-s<seed>/` (`-sb<b>` before `-s` with a statistics batch; config.json, "
                    "metrics.csv, eval.csv, summary.json); all numbers: `{}/results.csv`.",
                    s.dir.string(), s.dir.string());
  if (s.from_results > 0)
    md += fmt::format(" {} of the {} runs were read from the committed results in `{}`.", s.from_results, s.runs.size(),
                      s.plan.results_dir);
  return md + "\n";
}

std::string report_html(const std::string& md, const fs::path& dir) {
  const auto inline_svg = [&dir](const std::string& src, const std::string&) {
    std::ifstream svg(dir / src);
    std::stringstream buffer;
    buffer << svg.rdbuf();
    return buffer.str();
  };
  return "<!doctype html><html><head><meta charset=\"utf-8\"><title>normlab report</title><style>"
         "body{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}"
         "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
         "td:first-child,th:first-child{text-align:left}figure{margin:1.5em 0}figcaption{color:#555;font-size:90%}"
         "code{background:#f4f4f4;padding:0 3px}"
         "</style></head><body>\n" +
         markdown_to_html(md, inline_svg) + "</body></html>\n";
}

}  // namespace

int report_main(const std::string& dir_arg, const std::string& results_dir) {
  const fs::path dir(dir_arg);
  const Sweep sweep = load_sweep(dir, results_dir);
  fs::create_directories(dir);

  std::vector<Figure> figures;
  for (auto job : {error_vs_batch, error_vs_stat_batch, curves_per_batch, curves_per_norm, bn_eval_modes, step_time,
                   norm_outputs, bn_stat_noise, brn_clipping, grad_norm_layers, grad_norm_pre_post_ln})
    for (auto& f : job(sweep)) figures.push_back(std::move(f));
  for (const auto& f : figures) app::write_file_atomic((dir / f.file).string(), f.svg);
  if (!results_dir.empty()) write_results_csv(sweep.plan, planned_runs(sweep.plan));  // the union of both directories

  const std::string md = report_md(sweep, figures);
  app::write_file_atomic((dir / "report.md").string(), md);
  app::write_file_atomic((dir / "report.html").string(), report_html(md, dir));
  fmt::print("{}", md.substr(0, md.find("![")));
  fmt::print("report: {}/report.md, {}/report.html, {} figures\n", dir.string(), dir.string(), figures.size());
  return 0;
}

app::Command app::add_report_command(CLI::App& parent) {
  auto dir = std::make_shared<std::string>(), results = std::make_shared<std::string>();
  CLI::App* c = parent.add_subcommand("report", "Figures and tables from a sweep directory: report.md, report.html "
                                                "and SVG figures in DIR");
  c->add_option("dir", *dir, "Sweep directory (written by normlab sweep); report.md/html and figures go here")
      ->required();
  c->add_option("--results", *results,
                "Committed results (normlab export-results): runs finished only there are read from there");
  return {c, [dir, results]() { return report_main(*dir, *results); }};
}

}  // namespace nl
