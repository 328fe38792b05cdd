// normlab core: the communicator, the one door through which the training loop, SyncBN and
// the sweep see other processes. Core knows no MPI: dist/ implements this interface on
// Open MPI and installs it with set_world() when the process was started by mpirun; every
// other process keeps the single-process communicator (rank 0 of 1, every call a no-op copy).
//
//   Communicator& comm = dist::world();
//   comm.allreduce_sum(grads.data(), n);      // grads[i] = sum over ranks, the same bits on every rank
//   comm.allgather(&local, 3, all.data());    // all[r*3 .. r*3+3) = rank r's three values
//
// Every call is collective: all ranks must make the same calls in the same order, or they
// wait for each other forever. check_all() turns a failure on one rank (an exception before
// a collective call) into the same error on every rank, naming the rank.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace nl::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;  // "single process" | "Open MPI 4.1.4"

  // In place: data[i] = sum over ranks of data[i]. Every rank receives the same bits.
  virtual void allreduce_sum(float* data, int64_t n) = 0;
  virtual void allreduce_sum(double* data, int64_t n) = 0;
  // out[r*n + i] = rank r's in[i]; out holds size()*n values.
  virtual void allgather(const float* in, int64_t n, float* out) = 0;
  virtual void allgather(const int64_t* in, int64_t n, int64_t* out) = 0;
  virtual void allgather(const double* in, int64_t n, double* out) = 0;
  // data = root's data on every rank.
  virtual void broadcast(float* data, int64_t n, int root) = 0;
  virtual void broadcast(char* data, int64_t n, int root) = 0;
  virtual void barrier() = 0;
  // Ends every process of the job at once (the other ranks may be blocked in a collective).
  [[noreturn]] virtual void abort(int exit_code) = 0;
};

// The communicator of this process: single-process unless set_world() installed another.
Communicator& world();
void set_world(std::unique_ptr<Communicator> comm);
bool is_distributed();  // world().size() > 1

// Collective: every rank passes its own outcome ("" = fine). If any rank failed, every rank
// throws nl::Error with the first failing rank's message, "rank R of K: <message>".
void check_all(const std::string& error, Communicator& comm = world());

// Collective: every tensor gets root's values (parameters and buffers at the start of a run).
void broadcast_tensors(const std::vector<Tensor>& tensors, int root = 0, Communicator& comm = world());

// Collective data-parallel gradient averaging over one flat buffer (one allreduce per step):
// every parameter's gradient becomes sum over ranks of local_weight * grad. With
// local_weight = (examples on this rank) / (examples on all ranks) the result is the gradient
// of the global batch's mean loss, also when ranks hold unequal numbers of examples.
// Parameters without a gradient are skipped: every rank must have gradients for the same
// parameters (the same model and graph), which data parallelism guarantees. `buffer` is reused between steps to avoid an allocation per step.
void allreduce_gradients(const std::vector<Tensor>& params, float local_weight, std::vector<float>& buffer,
                         Communicator& comm = world());

}  // namespace nl::dist
