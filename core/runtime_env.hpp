// normlab core: the process environment the libraries read once, when they load.
//
// Two settings decide much of normlab's speed and are read by libraries before main() runs,
// so they can only be changed by setting the variable and re-executing the program:
//  * libgomp's wait policy: how a thread waits at the end of a parallel region for its next
//    one. Spinning costs nothing when every thread has a core of its own and is ruinous when
//    the cores are shared: the spinning thread burns the time slice its partner needs (the
//    MNIST CNN at batch 8 on 2 threads trained at 96-465 images/s with libgomp's default spin
//    and 2500-2600 with OMP_WAIT_POLICY=passive, load ~5). Sleeping (passive) is safe but
//    wakes the other thread through the kernel at every region: on a quiet 2-core machine the
//    same CNN at batch 2 trains ~3x slower passive than spinning, and batch 2 is what the
//    small-batch ablations are about. No setting is good in both, so normlab looks at what the
//    other processes use when it starts (docs/performance.md, "The wait policy, chosen at start").
//  * OpenBLAS's kernel set ("core"). A DYNAMIC_ARCH OpenBLAS picks its kernels from the CPU
//    model; one older than the CPU does not know the model and falls back to its most generic
//    x86-64 kernels. Debian 12's OpenBLAS 0.3.21 does that on Sapphire Rapids (family 6
//    model 207): it reports "Prescott" (SSE3) and runs sgemm 1024x128x384 at 25 GFLOP/s on one
//    thread, against 129-141 with the SkylakeX (AVX-512) kernels the CPU supports.
//
// tune_runtime_and_reexec() fixes both, once: a value the user set always wins.
#pragma once

#include <string>
#include <vector>

namespace nl {

// What to do about the wait policy when the user set neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT.
enum class WaitPolicyTuning {
  keep,     // libgomp's default (benchmarks and tests, which run alone)
  by_load,  // wait_policy_for(what other processes use at start): the commands that train
};

struct RuntimeTuning {
  WaitPolicyTuning wait_policy = WaitPolicyTuning::by_load;
  bool under_mpirun = false;  // this process is a rank of an mpirun job (then: passive)
  bool blas_core = true;  // force a better OpenBLAS core when it fell back to a generic one
};

// The wait-policy rule. Spin briefly (GOMP_SPINCOUNT=kQuietSpinCount, then sleep) when there are
// at least two cores and the other processes used at most kQuietOtherCores of them while
// normlab started; sleep at once (passive) otherwise, and under mpirun (ranks start together,
// so each sees the others idle). other_cores_busy < 0 (unknown) counts as busy.
constexpr double kQuietOtherCores = 0.3;
constexpr int kQuietSpinCount = 10000;
struct WaitPolicyChoice {
  std::string variable, value;  // "OMP_WAIT_POLICY" "passive", or "GOMP_SPINCOUNT" "10000"
  std::string reason;           // "0.0 other cores busy at start", "under mpirun", ...
};
WaitPolicyChoice wait_policy_for(double other_cores_busy, int cores, bool under_mpi);

// Cores the other processes of this machine kept busy over the next `seconds` (from
// /proc/stat: busy time of all CPUs while this thread sleeps); -1 when /proc/stat is unreadable.
double other_cores_busy(double seconds);

// libgomp's wait policy as this process's environment sets it: the one reader of the two
// variables libgomp reads (GOMP_SPINCOUNT wins over OMP_WAIT_POLICY, as in libgomp) and of
// normlab's marker, which holds the reason when normlab set them itself.
struct WaitPolicyEnv {
  std::string spin_count;  // GOMP_SPINCOUNT, "" when unset
  std::string policy;      // OMP_WAIT_POLICY, "" when unset
  std::string normlab_reason;  // "" unless normlab chose the two above ("0.0 other cores busy at start")
  // Whether idle threads spin before they sleep: libgomp's default, active, or a spin count > 0.
  bool spins() const;
  // A choice of the user's (either variable set, not by normlab). A parent that starts compute
  // processes of its own (a sweep's runs) passes it on untouched; normlab's own choice is not
  // passed on, so each child decides for itself when it starts, unless the parent pins the
  // children to passive because it starts several of them at once.
  bool set_by_user() const;
  // For logs and config.json: "passive (set by normlab: 1.2 other cores busy at start)",
  // "GOMP_SPINCOUNT=10000 (set by normlab: 0.0 other cores busy at start)", "active
  // (OMP_WAIT_POLICY set by the user)", "GOMP_SPINCOUNT=1000 (set by the user)" or "libgomp
  // default (spin, then sleep)".
  std::string description() const;
};
WaitPolicyEnv wait_policy_env();  // read now (the variables may have changed since start)
// Whether an environment entry ("NAME=value") is a wait-policy variable normlab set.
bool is_normlab_wait_policy_entry(const char* entry);
// The entries that pin a child to passive, recorded as normlab's choice for `reason`.
std::vector<std::string> passive_wait_policy_env(const std::string& reason);

// Sets the variables the tuning asks for and re-executes /proc/self/exe with the same argv,
// at most once (the re-executed process finds the variables set and returns at once).
// Returns normally when nothing needs changing or when exec fails (then runs as it is).
void tune_runtime_and_reexec(char** argv, RuntimeTuning tuning = {});

// The core OpenBLAS runs with ("SkylakeX", "Haswell", "Prescott", ...).
std::string blas_core_name();
// The best core this CPU can run that OpenBLAS 0.3.x knows ("SkylakeX" with AVX-512 F/DQ/BW/VL,
// "Haswell" with AVX2 + FMA), or "" when the CPU has neither.
std::string best_blas_core_for_cpu();
// Whether the running core uses this CPU's widest vector units (false: a generic fallback).
bool blas_core_matches_cpu(const std::string& core);
// For logs and config.json: "SkylakeX (chosen by normlab: OpenBLAS detected Prescott)",
// "SkylakeX (OPENBLAS_CORETYPE set by the user)", or "SkylakeX (detected by OpenBLAS)".
std::string blas_core_description();

// Subnormal floats (0 < |x| < 1.18e-38). Intel cores compute on them through a microcode
// assist, about a hundred times slower per instruction. Training makes them: the SGD momentum
// of weights whose gradients have died away (inputs behind dead ReLUs) decays into that range
// and stays there, fed by gradients as small. Seen on the Sapphire Rapids guest: a CIFAR-10 CNN
// with LayerNorm at batch 2 had 84% of its fc layer's momentum subnormal after 2 epochs, and
// the SGD update took 65% of each step (the run trained at a third of its speed).
// Flushing them to zero (the SSE control bits FTZ: results, and DAZ: inputs) costs nothing;
// a value that small moves no weight (lr * 1e-38 is below every weight's rounding), so
// training is the same up to where such values appear. TensorFlow does the same by default;
// PyTorch offers it as torch.set_flush_denormal(True).
//
// Sets both bits (on) or clears them (off) on the calling thread and every OpenMP thread, and
// so on the threads the pool starts later (they inherit the creating thread's settings).
void set_flush_denormals(bool on);
bool denormals_flushed();  // the calling thread's setting
// normlab's choice: flush unless the environment says NORMLAB_DENORMALS=keep. Applies it.
void configure_denormals();
// For logs and config.json: "flushed to zero (set by normlab)", "kept (NORMLAB_DENORMALS=keep)".
std::string denormals_description();

}  // namespace nl
