#pragma once
// The thread count every CPU kernel uses (dk.set_num_threads), and when a kernel starts a parallel
// region at all (threads_for). A process-wide count rather than omp_set_num_threads, which only
// affects the calling thread.
#include <omp.h>

#include <cstdint>

namespace dk::cpu {

int num_threads();
void set_num_threads(int n);

// How much work a call does, as one core would take it: floating-point operations (a multiply-add
// is 2) and bytes moved through memory (read plus written, fresh output pages included).
struct Work {
  double flops = 0.0, bytes = 0.0;
  static Work of_flops(double f) { return {f, 0.0}; }
  static Work of_bytes(double b) { return {0.0, b}; }
};

// One core of the reference machine (2-vCPU AMD EPYC, AVX-512), 1 thread, CPU time per call
// (benchmarks/results/parallel_min.md): GEMM and conv near the threshold run 18-144 GFLOP/s,
// streaming kernels (ReLU, pooling) 3.5 GB/s into fresh pages to 15 GB/s in cache. Both take the
// middle of their range (at the low end, 3.5 GB/s, a 39 us ReLU was estimated at 168 us, threaded).
constexpr double kFlopsPerUs = 40e3;
constexpr double kBytesPerUs = 7e3;

// Microseconds of one core's work below which a kernel runs on the calling thread, with no parallel
// region: waking a sleeping OpenMP worker (deepkern bounds the spin, python/deepkern/_openmp_env.py)
// takes tens of microseconds on these VMs (about 40 us quiet; 65-70 us loaded), and far longer when
// another process holds the other core. A region pays for itself only when half the work saves
// clearly more than that wake: 100 us, 2.5x the quiet wake. DEEPKERN_PARALLEL_MIN_US overrides it (read once;
// 0 = every region threaded, for measurements).
double parallel_min_us();

// Microseconds of one core's work from which a call splits its work over every thread even below
// parallel_min_us(): such a modest call runs its regions with a team only while a worker is likely
// still awake from the last region, or in a loop of back-to-back calls (warm_team.cpp), and on
// the calling thread alone otherwise. 25 us: half of it saves more than a warm region's ~7 us.
// DEEPKERN_PARALLEL_WARM_US overrides it (read once; at or above parallel_min_us() it is off).
double warm_min_us();

// Threads for one call: all of num_threads() when `w` takes at least warm_min_us() on one core,
// else 1. A region started with 1 thread wakes nobody; the result of a kernel whose reduction
// order does not depend on the thread count is the same either way.
// Defined in parallel.cpp, not inline: the per-ISA objects call these, and an inline copy
// compiled there with AVX flags could be the one the linker keeps (tools/check_isa_objects.sh).
int threads_for(Work w);
int threads_for_flops(double flops);
int threads_for_bytes(double bytes);

// The team a parallel region of `logical` threads starts: `logical`, or 1 while the calling thread
// finds the machine oversubscribed (another process holding our cores), or in a modest call whose
// worker has gone to sleep (warm_min_us() above). Every region's num_threads clause goes through
// it. Only the team shrinks: how a kernel splits its work (slots, partial sums, GEMM rectangles)
// follows `logical`, so results are bitwise the same either way.
// How the machine is judged: contention.cpp. DEEPKERN_CONTENTION=auto (default) | off | force.
int team(int logical);

// One op called from Python (the bindings open one around each kernel call): its start and end
// are what the warm rule reads. Nested scopes count as one call.
class CallScope {
 public:
  CallScope();
  ~CallScope();
  CallScope(const CallScope&) = delete;
  CallScope& operator=(const CallScope&) = delete;
};

// Memory-bound work over `elements` float values (read plus written): whether it is worth a region.
bool worth_threads(int64_t elements);

}  // namespace dk::cpu
