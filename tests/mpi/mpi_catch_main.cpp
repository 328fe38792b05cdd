// The main of the tests in tests/mpi/: joins the MPI job (dist/launch.hpp), runs the Catch2
// session on every rank, and makes every rank exit with the worst result of all ranks, so a
// check that fails on rank 1 only still fails the ctest entry.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "core/distributed.hpp"
#include "dist/launch.hpp"

int main(int argc, char** argv) {
  nl::dist::MpiSession session(argc, argv);
  const int failed = Catch::Session().run(argc, argv);
  double worst = failed;
  nl::dist::world().allreduce_sum(&worst, 1);
  return worst > 0 ? 1 : 0;
}
