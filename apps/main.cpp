// normlab: the command-line program. Dispatches to the subcommands (train, eval, sample;
// sweep and report parse their own flags, see apps/sweep.hpp)
// and turns every error into a message on stderr and an exit code (see commands.hpp):
// a user mistake must never end in a crash or a stack trace.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "apps/commands.hpp"
#include "apps/sweep.hpp"
#include "apps/train.hpp"
#include "core/distributed.hpp"
#include "dist/launch.hpp"
#include "core/runtime_env.hpp"

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
  nl::tune_runtime_and_reexec(argv);  // OMP_WAIT_POLICY, OpenBLAS core: see core/runtime_env.hpp
  const std::string first = argc > 1 ? argv[1] : "";
  // Under `mpirun normlab sweep` every rank is an independent shard (its runs are ordinary
  // processes), so sweep, report and export-results never join the MPI job.
  if (first == "sweep") return guarded([&] { return nl::sweep_main(argc - 1, argv + 1); });
  if (first == "report") return guarded([&] { return nl::report_main(argc - 1, argv + 1); });
  if (first == "export-results") return guarded([&] { return nl::export_results_main(argc - 1, argv + 1); });
  nl::dist::MpiSession mpi(argc, argv);  // joins the job under mpirun; nothing otherwise
  CLI::App app{"normlab: train and inspect neural networks to see how normalization layers behave.\n"
               "Run `normlab <command> --help` for a command's options."};
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();  // --help shows every default
  std::vector<nl::app::Command> commands{nl::app::add_train_command(app), nl::app::add_eval_command(app),
                                         nl::app::add_sample_command(app)};
  // Listed for --help only: these are dispatched above, before this parser runs.
  app.add_subcommand("sweep", "Run one training per (norm, batch size, seed) in parallel; resumable "
                              "(`normlab sweep --help`)");
  app.add_subcommand("report", "Figures and tables from a sweep directory (`normlab report --help`)");
  app.add_subcommand("export-results", "Compact copy of a sweep's finished runs, to commit "
                                       "(`normlab export-results --help`)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, or the error naming the flag
    return code == 0 ? 0 : 2;
  }
  return guarded([&] {
    for (auto& c : commands)
      if (c.sub->parsed()) return c.run();
    return 2;
  });
}
