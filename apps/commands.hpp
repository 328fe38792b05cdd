// normlab apps: the subcommands of the `normlab` program. Each adds itself to the CLI11 app
// and returns the function to run when it was chosen on the command line.
//
// Exit codes (all commands): 0 success, 1 a failure while running (missing or corrupt files),
// 2 a usage error (unknown flag, bad value), 3 the training diverged, 130 interrupted (Ctrl-C).
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace nl::app {

struct Command {
  CLI::App* sub;
  std::function<int()> run;
};

Command add_train_command(CLI::App& app);   // apps/train_cli.cpp
Command add_eval_command(CLI::App& app);    // apps/eval.cpp
Command add_sample_command(CLI::App& app);  // apps/sample.cpp

}  // namespace nl::app
