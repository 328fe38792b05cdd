// normlab apps: `normlab report DIR` reads a sweep directory (sweep.json + one run directory
// per run) and writes the figures a paper would show, as SVG, with report.md and a
// self-contained report.html:
//   error_vs_batch.svg          final test error vs batch size (log2 axis), mean +/- std over seeds
//   curves_b<B>.svg             train loss vs epochs, one line per norm, at each batch size
//   curves_<norm>.svg           the same per norm, one line per batch size
//   test_error_b<B>.svg         test error after each epoch (when runs evaluated every epoch)
//   loss_vs_time_b<B>.svg       train loss vs wall-clock seconds (speed claims, e.g. RMSNorm)
//   bn_eval_modes.svg           BN-family accuracy with running vs batch vs Precise-BN statistics
//   step_time.svg               milliseconds per step per norm and batch size
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apps/sweep.hpp"
#include "apps/svg_plot.hpp"
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

json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return nullptr;
  try {
    return json::parse(in);
  } catch (const std::exception&) {
    return nullptr;
  }
}

struct Run {
  std::string variant;
  int batch_size = 0, seed = 0;
  fs::path dir;
  json summary, eval_modes;
  Table metrics, evals;
  bool ok() const { return summary.is_object() && summary.value("status", "") == "ok"; }
  bool diverged() const { return summary.is_object() && summary.value("status", "").rfind("diverged", 0) == 0; }
  double number(const char* key) const {
    return summary.is_object() && summary.contains(key) && summary[key].is_number() ? summary[key].get<double>() : NAN;
  }
};

struct MeanStd {
  double mean = NAN, std = NAN;
  int n = 0;
};
MeanStd mean_std(const std::vector<double>& v) {
  MeanStd m;
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
  return m;
}

// Curve (x, y) of a metrics column, smoothed by a moving average and thinned to ~300 points.
std::vector<std::pair<double, double>> curve(const Table& t, const std::string& x_col, const std::string& y_col,
                                             double x_scale = 1.0) {
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
  for (size_t i = 0; i < n; i += every) out.emplace_back(t.rows[i][xi] * x_scale, ys[i]);
  if ((n - 1) % every) out.emplace_back(t.rows[n - 1][xi] * x_scale, ys[n - 1]);
  return out;
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream f(path);
  NL_CHECK(static_cast<bool>(f), "report: cannot write ", path.string());
  f << text;
}

}  // namespace

int report_main(int argc, char** argv) {
  CLI::App app{"normlab report: figures and tables from a sweep directory"};
  std::string dir_arg;
  app.add_option("dir", dir_arg, "Sweep directory (written by normlab sweep)")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const fs::path dir(dir_arg);
  const json plan = read_json(dir / "sweep.json");
  NL_CHECK(plan.is_object(), "report: ", (dir / "sweep.json").string(), " is missing or not valid JSON (is ", dir_arg,
           " a sweep directory?)");
  std::vector<std::string> variants;
  for (const auto& v : plan["variants"]) variants.push_back(v["label"]);
  std::vector<int> batch_sizes = plan["batch_sizes"].get<std::vector<int>>();
  std::vector<int> seeds = plan["seeds"].get<std::vector<int>>();

  std::vector<Run> runs;
  for (const auto& v : variants)
    for (int b : batch_sizes)
      for (int s : seeds) {
        Run r;
        r.variant = v, r.batch_size = b, r.seed = s;
        r.dir = dir / run_name(v, b, s);
        r.summary = read_json(r.dir / "summary.json");
        r.eval_modes = read_json(r.dir / "eval_modes.json");
        r.metrics = read_csv(r.dir / "metrics.csv");
        r.evals = read_csv(r.dir / "eval.csv");
        runs.push_back(std::move(r));
      }
  auto runs_of = [&](const std::string& v, int b) {
    std::vector<const Run*> out;
    for (const auto& r : runs)
      if (r.variant == v && r.batch_size == b) out.push_back(&r);
    return out;
  };
  const bool language_model = [&] {
    for (const auto& r : runs)
      if (r.summary.is_object() && r.summary.contains("tokens_per_second")) return true;
    return false;
  }();
  const std::string metric_name = language_model ? "validation loss" : "test error (%)";
  // The headline number of a run: test error in % for classifiers, validation loss for LMs.
  auto headline = [&](const Run& r) {
    if (!r.ok()) return static_cast<double>(NAN);
    return language_model ? r.number("test_loss") : 100.0 * (1.0 - r.number("test_accuracy"));
  };

  std::vector<std::pair<std::string, std::string>> figures;  // (file, caption)
  auto add_figure = [&](const std::string& file, const std::string& svg, const std::string& caption) {
    write_file(dir / file, svg);
    figures.emplace_back(file, caption);
  };

  // 1. final metric vs batch size
  if (batch_sizes.size() > 1) {
    LinePlot p;
    p.title = fmt::format("Final {} vs batch size", metric_name);
    p.x_label = "batch size (log2)";
    p.y_label = metric_name;
    p.log2_x = true;
    for (const auto& v : variants) {
      PlotSeries s{v, {}, {}};
      for (int b : batch_sizes) {
        std::vector<double> vals;
        for (const Run* r : runs_of(v, b)) vals.push_back(headline(*r));
        MeanStd m = mean_std(vals);
        if (m.n == 0) continue;
        s.points.emplace_back(b, m.mean);
        s.spread.push_back(m.std);
      }
      p.series.push_back(std::move(s));
    }
    add_figure("error_vs_batch.svg", p.to_svg(),
               fmt::format("Final {} against batch size; line = mean over {} seed(s), band = +/- one standard deviation. "
                           "Diverged runs are left out (see the table).",
                           metric_name, seeds.size()));
  }
  // 2. learning curves per batch size (x = epochs so different batch sizes line up), first seed
  for (int b : batch_sizes) {
    LinePlot p;
    p.title = fmt::format("Training loss, batch {}", b);
    p.x_label = language_model ? "step" : "epoch";
    p.y_label = "train loss (moving average)";
    p.markers = false;
    p.log_y = true;
    for (const auto& v : variants)
      for (const Run* r : runs_of(v, b))
        if (r->seed == seeds.front()) p.series.push_back({v, curve(r->metrics, language_model ? "step" : "epoch", "train_loss"), {}});
    add_figure(fmt::format("curves_b{}.svg", b), p.to_svg(), fmt::format("Training loss of each norm at batch {} (seed {}).", b, seeds.front()));
    // test error per epoch, if runs evaluated more than once
    LinePlot e;
    e.title = fmt::format("{} after each epoch, batch {}", metric_name, b);
    e.x_label = "epoch";
    e.y_label = metric_name;
    bool any = false;
    for (const auto& v : variants)
      for (const Run* r : runs_of(v, b))
        if (r->seed == seeds.front() && r->evals.rows.size() > 1) {
          const int ei = r->evals.column("epoch"), ai = r->evals.column(language_model ? "test_loss" : "test_acc");
          if (ei < 0 || ai < 0) continue;
          PlotSeries s{v, {}, {}};
          for (const auto& row : r->evals.rows) s.points.emplace_back(row[ei], language_model ? row[ai] : 100.0 * (1.0 - row[ai]));
          e.series.push_back(std::move(s));
          any = true;
        }
    if (any) add_figure(fmt::format("test_error_b{}.svg", b), e.to_svg(), fmt::format("{} after each epoch at batch {}.", metric_name, b));
    // wall-clock view: the same loss against seconds
    LinePlot t;
    t.title = fmt::format("Training loss vs time, batch {}", b);
    t.x_label = "seconds";
    t.y_label = "train loss (moving average)";
    t.markers = false;
    t.log_y = true;
    for (const auto& v : variants)
      for (const Run* r : runs_of(v, b))
        if (r->seed == seeds.front()) t.series.push_back({v, curve(r->metrics, "seconds", "train_loss"), {}});
    add_figure(fmt::format("loss_vs_time_b{}.svg", b), t.to_svg(),
               fmt::format("Training loss against wall-clock time at batch {}: what a norm's cost does to progress.", b));
  }
  // 3. per norm, one curve per batch size
  if (batch_sizes.size() > 1 && !language_model) {
    for (const auto& v : variants) {
      LinePlot p;
      p.title = fmt::format("{}: training loss per batch size", v);
      p.x_label = "epoch";
      p.y_label = "train loss (moving average)";
      p.markers = false;
      p.log_y = true;
      for (int b : batch_sizes)
        for (const Run* r : runs_of(v, b))
          if (r->seed == seeds.front()) p.series.push_back({fmt::format("batch {}", b), curve(r->metrics, "epoch", "train_loss"), {}});
      add_figure(fmt::format("curves_{}.svg", v), p.to_svg(), fmt::format("{}: training loss at each batch size (GN paper, Fig. 5 style).", v));
    }
  }
  // 4. BN statistics modes
  {
    BarChart c;
    c.title = "BN-family: test accuracy by statistics used at test time";
    c.value_label = "test accuracy (%)";
    c.series_labels = {"running stats", "batch stats", "Precise BN"};
    c.values.assign(3, {});
    for (const auto& r : runs) {
      if (!r.eval_modes.is_object() || r.seed != seeds.front()) continue;
      c.categories.push_back(fmt::format("{} b{}", r.variant, r.batch_size));
      const char* keys[] = {"running_stats_accuracy", "batch_stats_accuracy", "precise_bn_accuracy"};
      for (int k = 0; k < 3; ++k)
        c.values[k].push_back(r.eval_modes.contains(keys[k]) && r.eval_modes[keys[k]].is_number()
                                  ? 100.0 * r.eval_modes[keys[k]].get<double>()
                                  : NAN);
    }
    if (!c.categories.empty())
      add_figure("bn_eval_modes.svg", c.to_svg(),
                 "Test accuracy of BN-family runs evaluated with the running statistics (the default), with the test "
                 "batch's own statistics, and with Precise-BN statistics recomputed over training batches. A gap between "
                 "the first and the last is BN's train/test discrepancy.");
  }
  // 5. time per step
  {
    BarChart c;
    c.title = "Time per training step";
    c.value_label = "milliseconds per step";
    for (int b : batch_sizes) c.series_labels.push_back(fmt::format("batch {}", b));
    c.categories = variants;
    for (int b : batch_sizes) {
      std::vector<double> row;
      for (const auto& v : variants) {
        std::vector<double> ms;
        for (const Run* r : runs_of(v, b))
          if (r->ok() && r->number("steps") > 0) ms.push_back(1000.0 * r->number("seconds") / r->number("steps"));
        row.push_back(mean_std(ms).mean);
      }
      c.values.push_back(row);
    }
    add_figure("step_time.svg", c.to_svg(),
               "Wall-clock milliseconds per training step (includes data loading and evaluation amortised over the run; "
               "runs of a sweep share the machine).");
  }

  // ---- tables
  std::string md = "# normlab report: " + dir.filename().string() + "\n\n";
  if (plan.contains("description")) md += plan["description"].get<std::string>() + "\n\n";
  md += fmt::format("Headline metric: **{}** (mean +/- std over seeds {}). `diverged` = the loss became NaN/Inf.\n\n",
                    metric_name, fmt::join(seeds, ","));
  md += "| norm |";
  for (int b : batch_sizes) md += fmt::format(" B={} |", b);
  md += "\n|---|";
  for (size_t i = 0; i < batch_sizes.size(); ++i) md += "---|";
  md += "\n";
  std::map<std::string, std::vector<double>> means;
  for (const auto& v : variants) {
    md += "| " + v + " |";
    for (int b : batch_sizes) {
      std::vector<double> vals;
      int diverged = 0, missing = 0;
      for (const Run* r : runs_of(v, b)) {
        if (r->diverged()) ++diverged;
        else if (!r->ok()) ++missing;
        vals.push_back(headline(*r));
      }
      MeanStd m = mean_std(vals);
      means[v].push_back(m.mean);
      std::string cell = m.n ? (m.n > 1 ? fmt::format("{:.2f} +/- {:.2f}", m.mean, m.std) : fmt::format("{:.2f}", m.mean)) : "";
      if (diverged) cell += fmt::format(" ({} diverged)", diverged);
      if (missing) cell += fmt::format(" ({} missing)", missing);
      md += " " + cell + " |";
    }
    md += "\n";
  }
  if (means.count("bn") && means.count("gn")) {
    md += "| **BN - GN** |";
    for (size_t i = 0; i < batch_sizes.size(); ++i) {
      const double d = means["bn"][i] - means["gn"][i];
      md += std::isfinite(d) ? fmt::format(" {:+.2f} |", d) : " |";
    }
    md += "\n";
  }
  // step-time overhead vs none
  if (std::find(variants.begin(), variants.end(), "none") != variants.end()) {
    md += "\nTime per step relative to no normalization (same batch size):\n\n| norm |";
    for (int b : batch_sizes) md += fmt::format(" B={} |", b);
    md += "\n|---|";
    for (size_t i = 0; i < batch_sizes.size(); ++i) md += "---|";
    md += "\n";
    auto ms_of = [&](const std::string& v, int b) {
      std::vector<double> ms;
      for (const Run* r : runs_of(v, b))
        if (r->ok() && r->number("steps") > 0) ms.push_back(1000.0 * r->number("seconds") / r->number("steps"));
      return mean_std(ms).mean;
    };
    for (const auto& v : variants) {
      md += "| " + v + " |";
      for (int b : batch_sizes) {
        const double ratio = ms_of(v, b) / ms_of("none", b);
        md += std::isfinite(ratio) ? fmt::format(" {:.2f}x |", ratio) : " |";
      }
      md += "\n";
    }
  }
  md += "\n";
  for (const auto& [file, caption] : figures) md += fmt::format("![{}]({})\n\n*{}*\n\n", file, file, caption);
  md += fmt::format("Runs: `{}/<norm>-b<batch>-s<seed>/` (config.json, metrics.csv, eval.csv, summary.json); all "
                    "numbers: `{}/results.csv`.\n",
                    dir.string(), dir.string());
  write_file(dir / "report.md", md);

  // report.html: the same, self-contained (SVGs inlined, tables converted)
  std::string html = "<!doctype html><html><head><meta charset=\"utf-8\"><title>normlab report</title><style>"
                     "body{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}"
                     "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
                     "td:first-child{text-align:left}figure{margin:1.5em 0}figcaption{color:#555;font-size:90%}"
                     "</style></head><body>\n";
  std::stringstream lines(md);
  std::string line;
  bool in_table = false;
  while (std::getline(lines, line)) {
    if (line.rfind("|", 0) == 0) {
      if (line.find("---") != std::string::npos) continue;
      if (!in_table) html += "<table>\n", in_table = true;
      html += "<tr>";
      std::stringstream cells(line.substr(1));
      std::string cell;
      while (std::getline(cells, cell, '|')) html += "<td>" + cell + "</td>";
      html += "</tr>\n";
      continue;
    }
    if (in_table) html += "</table>\n", in_table = false;
    if (line.rfind("# ", 0) == 0) html += "<h1>" + line.substr(2) + "</h1>\n";
    else if (line.rfind("![", 0) == 0) {
      const std::string file = line.substr(2, line.find(']') - 2);
      std::ifstream svg(dir / file);
      std::stringstream buffer;
      buffer << svg.rdbuf();
      html += "<figure>" + buffer.str();
    } else if (line.rfind("*", 0) == 0 && line.size() > 2 && line.back() == '*') {
      html += "<figcaption>" + line.substr(1, line.size() - 2) + "</figcaption></figure>\n";
    } else if (!line.empty()) html += "<p>" + line + "</p>\n";
  }
  if (in_table) html += "</table>\n";
  html += "</body></html>\n";
  write_file(dir / "report.html", html);
  fmt::print("{}", md.substr(0, md.find("![")));
  fmt::print("report: {}/report.md, {}/report.html, {} figures\n", dir.string(), dir.string(), figures.size());
  return 0;
}

}  // namespace nl
