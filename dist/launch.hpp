// normlab dist: joining the MPI job this process was started in, if any.
//
// main() creates one MpiSession first thing. Under `mpirun -np K` it initializes Open MPI and
// installs an MPI communicator as dist::world() (core/distributed.hpp); in a process started
// any other way, or in a build without MPI (cmake -DNORMLAB_MPI=OFF), it does nothing and
// world() stays the single-process communicator, so plain `normlab train` never touches MPI.
#pragma once

#include <string>

namespace nl::dist {

bool built_with_mpi();       // NORMLAB_MPI was on at build time
bool launched_by_mpirun();   // Open MPI's launcher set OMPI_COMM_WORLD_SIZE (or PMIx its rank)
// Ranks of this job on this machine (OMPI_COMM_WORLD_LOCAL_SIZE; 1 outside mpirun): the
// default thread count divides the cores among them.
int local_ranks();

class MpiSession {
 public:
  MpiSession(int& argc, char**& argv);
  ~MpiSession();  // MPI_Finalize (after every rank got here)
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

 private:
  bool active_ = false;
};

}  // namespace nl::dist
