// The warm rule (warm_team.h) and CallScope (parallel.h): when a modest call may wake a worker.
//
// Why: waking a sleeping OpenMP worker costs 30-70 us on these VMs, but a region within ~20 us of the
// last one costs ~7 us (the worker still spins: deepkern bounds libgomp's spin to 1000 rounds,
// python/deepkern/_openmp_env.py). A call of 25-100 us of one core's work gains from a second
// thread only in the second case, so it looks at when the last region with a team ended.
// How: CallScope marks each Python-facing call's start and end. A call that ran a team records its
// end (process-wide: the workers are shared); a modest call runs a team if that end is under
// kSpinNs ago, or if the last kTightCalls calls each started within kSpinNs of the previous one's
// end (a loop of small calls, where the first wake-up warms the worker for the rest).
#include "cpu/common/warm_team.h"

#include <atomic>
#include <chrono>

#include "cpu/common/parallel.h"

namespace dk::cpu {

namespace {

// Measured on the Zen 4 and Zen 3 VMs (benchmarks/RESULTS.md, "Busy machine"): a region 20 us after
// the last costs the same as back to back, 40 us after it costs a wake-up. 15 us leaves a margin.
constexpr int64_t kSpinNs = 15'000;
constexpr int kTightCalls = 3;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::atomic<int64_t> g_team_end_ns{0};  // when the last call that ran a team returned

struct CallState {
  int depth = 0;          // CallScopes open on this thread
  bool modest = false;    // threads_for judged the current call modest
  bool ran_team = false;  // a region of the current call had a team
  bool warm = false;      // decided once per call, at its first modest region
  bool decided = false;
  int64_t start_ns = 0, last_end_ns = 0;
  int tight = 0;  // calls in a row that started within kSpinNs of the previous one's end
  warm::Counts counts;
};

CallState& state() {
  static thread_local CallState s;
  return s;
}

}  // namespace

namespace warm {

void mark_modest_call(bool modest) { state().modest = modest; }

bool region_stays_alone() {
  CallState& s = state();
  if (s.depth == 0 || !s.modest) return false;
  if (!s.decided) {
    s.decided = true;
    const int64_t since_team = s.start_ns - g_team_end_ns.load(std::memory_order_relaxed);
    s.warm = since_team < kSpinNs || s.tight >= kTightCalls;
  }
  return !s.warm;
}

void note_team_region() { state().ran_team = true; }

Counts counts() { return state().counts; }

}  // namespace warm

CallScope::CallScope() {
  CallState& s = state();
  if (s.depth++ > 0) return;
  s.start_ns = now_ns();
  s.tight = (s.start_ns - s.last_end_ns < kSpinNs) ? s.tight + 1 : 0;
  s.modest = s.ran_team = s.warm = s.decided = false;
}

CallScope::~CallScope() {
  CallState& s = state();
  if (--s.depth > 0) return;
  s.last_end_ns = now_ns();
  if (s.decided) {
    ++s.counts.modest_calls;
    s.counts.with_team += s.warm ? 1 : 0;
  }
  if (s.ran_team) g_team_end_ns.store(s.last_end_ns, std::memory_order_relaxed);
  s.modest = false;
}

}  // namespace dk::cpu
