// normlab dist: the build without MPI (cmake -DNORMLAB_MPI=OFF). Every process is one rank;
// a process that mpirun started anyway is refused, since K copies of one run writing the same
// run directory would corrupt it.
#include <cstdio>
#include <cstdlib>

#include "dist/launch.hpp"

namespace nl::dist {

bool built_with_mpi() { return false; }

MpiSession::MpiSession(int&, char**&) {
  if (launched_by_mpirun()) {
    std::fprintf(stderr, "normlab: error: started by mpirun, but this normlab was built without MPI "
                         "(cmake -DNORMLAB_MPI=OFF, or libopenmpi-dev was missing): rebuild with "
                         "scripts/install_deps.sh and -DNORMLAB_MPI=ON\n");
    std::exit(1);
  }
}

MpiSession::~MpiSession() = default;

}  // namespace nl::dist
