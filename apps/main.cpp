// normlab: the command-line program. One CLI11 parser for all subcommands (each adds itself,
// see commands.hpp); every error becomes a message on stderr and an exit code: a user
// mistake must never end in a crash or a stack trace.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "apps/commands.hpp"
#include "apps/train_config.hpp"
#include "core/distributed.hpp"
#include "core/runtime_env.hpp"
#include "dist/launch.hpp"

namespace {

// Runs fn, turning exceptions into a message and an exit code (see commands.hpp).
// Under mpirun a rank that fails alone cannot just return: the others may be waiting for it
// in a collective call, so it names itself and ends the whole job (MPI_Abort).
int fail(int code, const char* message) {
  auto& comm = nl::dist::world();
  if (comm.size() == 1) {
    std::fprintf(stderr, "error: %s\n", message);
    return code;
  }
  std::fprintf(stderr, "error (rank %d of %d): %s\n", comm.rank(), comm.size(), message);
  std::fflush(stderr);
  comm.abort(code);
  return code;  // not reached: abort() ends every rank
}

template <typename Fn>
int guarded(Fn&& fn) {
  try {
    return fn();
  } catch (const nl::app::UsageError& e) {
    return fail(2, e.what());
  } catch (const std::bad_alloc&) {
    return fail(1, "out of memory (try a smaller --batch-size or model)");
  } catch (const std::exception& e) {
    return fail(1, e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  // OpenMP wait policy and OpenBLAS core (core/runtime_env.hpp). The wait policy only matters
  // to the commands that compute; a sweep passes the choice to its runs (apps/sweep.cpp).
  const std::string command = argc > 1 ? argv[1] : "";
  const bool computes = command == "train" || command == "eval" || command == "sample";
  nl::tune_runtime_and_reexec(argv, {.wait_policy = computes ? nl::WaitPolicyTuning::by_load : nl::WaitPolicyTuning::keep,
                                     .under_mpirun = nl::dist::launched_by_mpirun()});
  nl::configure_denormals();           // subnormals flushed to zero (ibid.)
  CLI::App app{"normlab: train and inspect neural networks to see how normalization layers behave.\n"
               "Run `normlab <command> --help` for a command's options."};
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();  // --help shows every default
  std::vector<nl::app::Command> commands{nl::app::add_train_command(app),  nl::app::add_eval_command(app),
                                         nl::app::add_sample_command(app), nl::app::add_sweep_command(app),
                                         nl::app::add_report_command(app), nl::app::add_export_results_command(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, or the error naming the flag
    return code == 0 ? 0 : 2;
  }
  // Under `mpirun normlab sweep` every rank is an independent shard (its runs are ordinary
  // processes), so sweep, report and export-results never join the MPI job; the others do.
  const std::string chosen = app.get_subcommands().front()->get_name();
  std::optional<nl::dist::MpiSession> mpi;
  if (chosen == "train" || chosen == "eval" || chosen == "sample") mpi.emplace(argc, argv);
  return guarded([&] {
    for (auto& c : commands)
      if (c.sub->parsed()) return c.run();
    return 2;
  });
}
