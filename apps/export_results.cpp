// normlab apps: `normlab export-results SWEEP_DIR DEST` writes the compact copy of a sweep's
// finished runs that can be committed (results/<sweep-name>/): for each run whose summary.json
// says "ok" or "diverged", DEST/<run>/ gets summary.json, config.json, eval.csv,
// eval_modes.json (when the run has one), metrics.csv thinned to at most --max-rows rows and
// diagnostics.csv (with --diagnostics) to at most --max-diagnostic-steps logged steps; never a
// checkpoint or model. DEST also gets sweep.json and a results.csv over every run
// found in DEST (runs exported earlier, e.g. from another machine, are kept, and sweep.json is
// the union of both plans: merge_plans).
//
// Thinning is deterministic: of n data rows, rows round(i (n-1) / (m-1)) for i = 0..m-1, so
// the first and the last row are always kept. Paths of the machine that ran the sweep mean
// nothing elsewhere (and must not be committed): config.json's "out" and eval_modes.json's
// "run" become the run's name, and every absolute path in the JSON files (a --data-dir, a
// text:/... dataset) is cut to its last component.
//
// Then, on any machine: `normlab sweep ... --results DEST` does not run those again, and
// `normlab report OUT --results DEST` plots the union of OUT and DEST.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apps/commands.hpp"
#include "apps/run_dir.hpp"
#include "apps/sweep.hpp"
#include "apps/train_config.hpp"

namespace nl {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> nonempty_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line))
    if (!line.empty()) lines.push_back(line);
  return lines;
}

// Which m of n items to keep: round(i (n-1) / (m-1)) for i = 0..m-1 (first and last included).
std::vector<size_t> evenly_spread(size_t n, size_t m) {
  m = std::min(n, m);
  std::vector<size_t> kept;
  for (size_t i = 0; i < m; ++i) kept.push_back(m == 1 ? n - 1 : (i * (n - 1) + (m - 1) / 2) / (m - 1));
  return kept;
}

// The header and at most max_rows data rows, first and last included.
std::string thin_csv(const std::string& text, size_t max_rows) {
  const std::vector<std::string> lines = nonempty_lines(text);
  if (lines.empty()) return "";
  std::string out = lines[0] + "\n";
  for (size_t row : evenly_spread(lines.size() - 1, max_rows)) out += lines[1 + row] + "\n";
  return out;
}

// diagnostics.csv is long (step, layer, quantity, value: many rows per logged step): the
// header and every row of at most max_steps of its steps, first and last included.
std::string thin_csv_by_step(const std::string& text, size_t max_steps) {
  const std::vector<std::string> lines = nonempty_lines(text);
  if (lines.empty()) return "";
  auto step_of = [](const std::string& line) { return line.substr(0, line.find(',')); };
  std::vector<std::string> steps;  // in file order, each once
  for (size_t i = 1; i < lines.size(); ++i)
    if (steps.empty() || steps.back() != step_of(lines[i])) steps.push_back(step_of(lines[i]));
  std::vector<std::string> kept;
  for (size_t i : evenly_spread(steps.size(), max_steps)) kept.push_back(steps[i]);
  std::string out = lines[0] + "\n";
  for (size_t i = 1; i < lines.size(); ++i)
    if (std::find(kept.begin(), kept.end(), step_of(lines[i])) != kept.end()) out += lines[i] + "\n";
  return out;
}

}  // namespace

// An absolute path is a word starting with '/' after the start, a space, ':' or '=', with at
// least two '/': "/a/b/data", "text:/a/b/x.txt", a description naming one. "B / 32" stays.
std::string cut_machine_paths(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const bool word_start = i == 0 || s[i - 1] == ' ' || s[i - 1] == ':' || s[i - 1] == '=';
    const size_t end = std::min(s.find_first_of(" ,:;", i), s.size());
    if (s[i] == '/' && word_start && std::count(s.begin() + i, s.begin() + end, '/') >= 2) {
      out += fs::path(s.substr(i, end - i)).filename().string();
      i = end;
    } else {
      out += s[i++];
    }
  }
  return out;
}

namespace {

// Every absolute path inside the strings of `j` cut to its last component.
json without_machine_paths(json j) {
  if (j.is_object() || j.is_array())
    for (auto& v : j) v = without_machine_paths(v);
  else if (j.is_string())
    return cut_machine_paths(j.get<std::string>());
  return j;
}

void export_run(const fs::path& from, const fs::path& to, const std::string& name, size_t max_rows,
                size_t max_diagnostic_steps) {
  app::ensure_directory(to.string());
  app::write_json_atomic((to / "summary.json").string(),
                         without_machine_paths(app::read_json((from / "summary.json").string())));
  json config = app::read_json((from / "config.json").string());
  config["out"] = name;
  app::write_json_atomic((to / "config.json").string(), without_machine_paths(config));
  if (fs::exists(from / "eval_modes.json")) {
    json modes = app::read_json((from / "eval_modes.json").string());
    modes["run"] = name;
    app::write_json_atomic((to / "eval_modes.json").string(), without_machine_paths(modes));
  }
  for (const char* csv : {"eval.csv", "metrics.csv"})
    if (fs::exists(from / csv))
      app::write_file_atomic((to / csv).string(),
                             std::string(csv) == "metrics.csv" ? thin_csv(slurp(from / csv), max_rows) : slurp(from / csv));
  if (fs::exists(from / "diagnostics.csv"))
    app::write_file_atomic((to / "diagnostics.csv").string(),
                           thin_csv_by_step(slurp(from / "diagnostics.csv"), max_diagnostic_steps));
}

}  // namespace

static int export_results(const std::string& sweep_dir, const std::string& dest, size_t max_rows,
                          size_t max_diagnostic_steps) {
  const fs::path plan_file = fs::path(sweep_dir) / "sweep.json";
  if (!fs::exists(plan_file))
    throw app::UsageError(fmt::format("export-results: {} has no sweep.json (is it a sweep directory?)", sweep_dir));
  const SweepPlan plan = plan_from_json(app::read_json(plan_file.string()), sweep_dir);
  NL_CHECK(fs::weakly_canonical(sweep_dir) != fs::weakly_canonical(dest), "export-results: DEST must differ from ",
           sweep_dir);
  app::ensure_directory(dest);
  int exported = 0, unfinished = 0;
  for (const PlannedRun& r : planned_runs(plan)) {
    const fs::path from = fs::path(sweep_dir) / r.name;
    if (!run_finished(from)) {
      ++unfinished;
      continue;
    }
    export_run(from, fs::path(dest) / r.name, r.name, max_rows, max_diagnostic_steps);
    ++exported;
  }
  // DEST may hold runs exported earlier from other parts of the sweep: its plan is the union.
  SweepPlan in_dest = plan;
  in_dest.out_dir = dest;
  const json dest_plan = read_json_or_null(fs::path(dest) / "sweep.json");
  if (dest_plan.is_object()) in_dest = merge_plans(plan_from_json(dest_plan, dest), in_dest);
  app::write_json_atomic((fs::path(dest) / "sweep.json").string(), without_machine_paths(plan_to_json(in_dest)));
  write_results_csv(in_dest, planned_runs(in_dest));
  fmt::print(stderr, "export-results: {} finished runs of {} written to {}{}\n", exported, sweep_dir, dest,
             unfinished ? fmt::format(" ({} not finished, left out)", unfinished) : "");
  return 0;
}

app::Command app::add_export_results_command(CLI::App& parent) {
  struct Args {
    std::string sweep_dir, dest;
    size_t max_rows = 200;
    size_t max_diagnostic_steps = 40;
  };
  auto a = std::make_shared<Args>();
  CLI::App* x = parent.add_subcommand("export-results", "A sweep's finished runs, compact (no checkpoints, "
                                                        "metrics.csv thinned), into a directory to commit");
  x->add_option("sweep_dir", a->sweep_dir, "Sweep directory (written by normlab sweep)")->required();
  x->add_option("dest", a->dest, "Destination, e.g. results/<sweep-name>")->required();
  x->add_option("--max-rows", a->max_rows, "At most this many metrics.csv rows per run (first and last kept)")
      ->check(CLI::Range(size_t{2}, size_t{1} << 40));
  x->add_option("--max-diagnostic-steps", a->max_diagnostic_steps,
                "At most this many logged steps of diagnostics.csv per run, every row of each (first and last kept)")
      ->check(CLI::Range(size_t{2}, size_t{1} << 40));
  return {x, [a]() { return export_results(a->sweep_dir, a->dest, a->max_rows, a->max_diagnostic_steps); }};
}

}  // namespace nl
