// normlab apps: the subcommands of the `normlab` program. Each adds itself to the CLI11 app
// and returns the function to run when it was chosen on the command line.
//
// Exit codes (all commands): 0 success, 1 a failure while running (missing or corrupt files),
// 2 a usage error (unknown flag, bad value), 3 the training diverged, 130 interrupted (Ctrl-C).
#pragma once

#include <functional>
#include <string>

#include <fmt/format.h>

#include <CLI/CLI.hpp>

namespace nl::app {

struct Command {
  CLI::App* sub;
  std::function<int()> run;
};

// Number checks for flags. CLI11's PositiveNumber/NonNegativeNumber print their range up to
// DBL_MAX in full when they fail ("not in range 0.000000 to 179769313486..."); these say
// what is wrong in words: "--batch-size: must be a number >= 1, got '0'".
inline CLI::Validator number_check(double lo, bool strict, const char* what) {
  return CLI::Validator(
      [lo, strict](std::string& value) -> std::string {
        try {
          size_t used = 0;
          const double v = std::stod(value, &used);
          if (used == value.size() && (strict ? v > lo : v >= lo)) return "";
        } catch (const std::exception&) {
        }
        return fmt::format("must be a number {} {}, got '{}'", strict ? ">" : ">=", lo, value);
      },
      what);
}
inline const CLI::Validator kPositive = number_check(0, true, "> 0");
inline const CLI::Validator kAtLeastOne = number_check(1, false, ">= 1");
inline const CLI::Validator kNonNegative = number_check(0, false, ">= 0");

Command add_train_command(CLI::App& app);           // apps/train_cli.cpp
Command add_eval_command(CLI::App& app);            // apps/eval.cpp
Command add_sample_command(CLI::App& app);          // apps/sample.cpp
Command add_sweep_command(CLI::App& app);           // apps/sweep.cpp
Command add_report_command(CLI::App& app);          // apps/report.cpp
Command add_export_results_command(CLI::App& app);  // apps/export_results.cpp

}  // namespace nl::app
