// The warm rule (warm_team.h) and CallScope (parallel.h): when a modest call may wake a worker.
//
// Why: a region that starts soon after the last one is cheap, one that finds the worker asleep pays
// a wake-up (benchmarks/region_wake.py). How soon is "soon" depends on the machine, VM idle handling
// included: on the Zen 4 VM a region 20 us after the last cost ~7 us and one 40 us after it 30-70 us;
// on the Zen 3 VM the cost stayed flat (~15 us for a 64^3 GEMM) up to 160 us and tripled at 320 us.
// A call of 25-100 us of one core's work gains from a second thread only while the region is cheap.
// How: CallScope marks each Python-facing call's start and end. A call that ran a team records its
// end (process-wide: the workers are shared); a modest call runs a team if that end is under
// kWarmWindowNs ago, or if the last kTightCalls calls each started within kWarmWindowNs of the previous
// one's end (a loop of small calls, where the first wake-up warms the worker for the rest).
#include "cpu/common/warm_team.h"

#include <atomic>
#include <cstdlib>

#include "cpu/common/clock.h"
#include "cpu/common/parallel.h"

namespace dk::cpu {

namespace {

// 60 us: inside the Zen 3 VM's cheap range, and past the Zen 4 VM's (where a modest call 40-60 us
// after a team pays one wake-up, as every call did before the thread cap, which measured faster there
// on these kernels on a quiet machine). A training loop's Python between two ops is often 20-50 us.
// Quiet and busy figures for 15 and 60 us: benchmarks/RESULTS.md, "Busy machine".
constexpr int64_t kWarmWindowNs = 60'000;
constexpr int kTightCalls = 3;

// DEEPKERN_WARM_WINDOW_US overrides the window, for measurements (read once).
int64_t window_ns() {
  static const int64_t v = [] {
    const char* s = std::getenv("DEEPKERN_WARM_WINDOW_US");
    const double us = (s != nullptr && *s != '\0') ? std::strtod(s, nullptr) : 0.0;
    return us > 0.0 ? int64_t(us * 1e3) : kWarmWindowNs;
  }();
  return v;
}

std::atomic<int64_t> g_team_end_ns{0};  // when the last call that ran a team returned

struct CallState {
  int depth = 0;          // CallScopes open on this thread
  bool modest = false;    // threads_for's modest verdict, for the next region (team() clears it)
  bool ran_team = false;  // a region of the current call had a team
  bool warm = false;      // decided once per call, at its first modest region
  bool decided = false;
  int64_t start_ns = 0, last_end_ns = 0;
  int tight = 0;  // calls in a row that started within kWarmWindowNs of the previous one's end
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
  s.modest = false;              // the verdict covers the region that follows it, not a later one of other work
  if (s.ran_team) return false;  // a region of this call just had a team: the worker is awake
  if (!s.decided) {
    s.decided = true;
    const int64_t since_team = s.start_ns - g_team_end_ns.load(std::memory_order_relaxed);
    s.warm = since_team < window_ns() || s.tight >= kTightCalls;
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
  s.tight = (s.start_ns - s.last_end_ns < window_ns()) ? s.tight + 1 : 0;
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
}

}  // namespace dk::cpu
