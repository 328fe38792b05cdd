// normlab dist: how a process learns it was started by mpirun (see launch.hpp).
#include "dist/launch.hpp"

#include <cstdlib>
#include <string>

namespace nl::dist {

bool launched_by_mpirun() { return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMIX_RANK") != nullptr; }

int local_ranks() {
  const char* v = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  const int n = v ? std::atoi(v) : 1;
  return n > 0 ? n : 1;
}

}  // namespace nl::dist
