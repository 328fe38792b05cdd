// normlab dist: core's Communicator on Open MPI (MPI_COMM_WORLD), see launch.hpp.
//
// Every call maps to one MPI collective. Counts above INT_MAX are sent in pieces, since
// MPI counts are int. MPI's default error handler (MPI_ERRORS_ARE_FATAL) stays: a failed
// collective, or a rank that died, ends the whole job with mpirun's message naming the rank.
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <string>

#include "core/distributed.hpp"
#include "dist/launch.hpp"

namespace nl::dist {

namespace {

// Calls fn(offset, count) over [0, n) in pieces that fit an int.
template <typename Fn>
void in_pieces(int64_t n, Fn fn) {
  constexpr int64_t kMax = INT_MAX / 2;
  for (int64_t at = 0; at < n; at += kMax) fn(at, static_cast<int>(std::min(kMax, n - at)));
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    MPI_Get_library_version(version, &length);
    name_.assign(version, static_cast<size_t>(length));
    name_ = name_.substr(0, name_.find(','));  // "Open MPI v4.1.4, package: ..." -> "Open MPI v4.1.4"
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return name_; }

  void allreduce_sum(float* data, int64_t n) override {
    in_pieces(n, [&](int64_t at, int count) {
      MPI_Allreduce(MPI_IN_PLACE, data + at, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    });
  }
  void allreduce_sum(double* data, int64_t n) override {
    in_pieces(n, [&](int64_t at, int count) {
      MPI_Allreduce(MPI_IN_PLACE, data + at, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    });
  }
  void allgather(const float* in, int64_t n, float* out) override {
    NL_CHECK(n <= INT_MAX, "allgather: ", n, " values per rank is more than MPI can count");
    MPI_Allgather(in, static_cast<int>(n), MPI_FLOAT, out, static_cast<int>(n), MPI_FLOAT, MPI_COMM_WORLD);
  }
  void allgather(const int64_t* in, int64_t n, int64_t* out) override {
    NL_CHECK(n <= INT_MAX, "allgather: ", n, " values per rank is more than MPI can count");
    MPI_Allgather(in, static_cast<int>(n), MPI_INT64_T, out, static_cast<int>(n), MPI_INT64_T, MPI_COMM_WORLD);
  }
  void allgather(const double* in, int64_t n, double* out) override {
    NL_CHECK(n <= INT_MAX, "allgather: ", n, " values per rank is more than MPI can count");
    MPI_Allgather(in, static_cast<int>(n), MPI_DOUBLE, out, static_cast<int>(n), MPI_DOUBLE, MPI_COMM_WORLD);
  }
  void broadcast(float* data, int64_t n, int root) override {
    in_pieces(n, [&](int64_t at, int count) { MPI_Bcast(data + at, count, MPI_FLOAT, root, MPI_COMM_WORLD); });
  }
  void broadcast(char* data, int64_t n, int root) override {
    in_pieces(n, [&](int64_t at, int count) { MPI_Bcast(data + at, count, MPI_CHAR, root, MPI_COMM_WORLD); });
  }
  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }
  [[noreturn]] void abort(int exit_code) override {
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; this tells the compiler so
  }

 private:
  int rank_ = 0, size_ = 1;
  std::string name_;
};

}  // namespace

bool built_with_mpi() { return true; }

MpiSession::MpiSession(int& argc, char**& argv) {
  if (!launched_by_mpirun()) return;
  // A rank waiting in a collective yields its core instead of spinning (as OMP_WAIT_POLICY=passive
  // does for threads): the machines this runs on are shared. The user's own setting wins.
  setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
  int provided = 0;
  // FUNNELED: only the main thread calls MPI (OpenMP workers and the data loader's thread never do).
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  active_ = true;
  set_world(std::make_unique<MpiCommunicator>());
}

MpiSession::~MpiSession() {
  if (!active_) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

}  // namespace nl::dist
