// team(): a parallel region's team shrinks to the calling thread while the machine is oversubscribed.
//
// Why: with another process holding one of two cores, a region of two threads waits at its end for
// whichever of them the scheduler has put aside, often for a whole time slice, so small jobs (a
// LeNet step: a dozen regions) ran 1.7-2x slower than on a quiet machine while one thread alone
// loses nothing (benchmarks/RESULTS.md, "Busy machine").
// How: the Linux scheduler counts, per thread, the time it sat runnable but not running
// (/proc/thread-self/schedstat, second field). On a quiet machine the calling thread almost never
// waits; when its regions compete with other work it waits for a share of every region. Every
// kWindowNs of wall time the calling thread reads that count: a wait above kBusyShare of the window,
// kStrikes windows in a row, puts it in "busy" mode (teams of 1) for a hold time, after which one window runs full
// teams again to test; each test that finds the machine still busy doubles the hold (up to kHoldMaxNs), so a machine
// that stays busy pays a test window rarely. A thread alone that still waits (a machine loaded far beyond its cores)
// stays busy without testing. Without the file (not Linux, or a kernel without scheduler statistics) nothing changes.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "cpu/common/clock.h"
#include "cpu/common/contention.h"
#include "cpu/common/parallel.h"
#include "cpu/common/warm_team.h"

namespace dk::cpu {

namespace {

// Measured (benchmarks/RESULTS.md, "Busy machine"): with another process spinning on one of two
// cores, 80-100% of the windows wait more than 20% (median 0.32-0.49) while the regions run full
// teams; on the quiet machine 97-100% wait nothing, and 1-3% spike above 20% alone (a wake-up
// placed on a busy core). Hence 20%, twice in a row. The window: replaying recorded LeNet traces
// (benchmarks/contention_trace.py), 5 ms windows decide in 11 ms (median; 10 ms windows: 21 ms) with
// no false start on the quiet traces, and a job that has just started runs its first regions on a
// busy machine at full teams until the decision.
constexpr int64_t kWindowNs = 5'000'000;       // 5 ms between readings
constexpr int64_t kStaleNs = 200'000'000;      // a gap longer than this (no calls) only restarts the count
constexpr double kBusyShare = 0.20;            // runnable-but-waiting share of a window that means busy
constexpr int kStrikes = 2;                    // windows in a row above it before regions shrink
constexpr int64_t kHoldMinNs = 100'000'000;    // first hold in busy mode
constexpr int64_t kHoldMaxNs = 1'600'000'000;  // longest hold between tests

ContentionMode mode_from_env() {
  const char* s = std::getenv("DEEPKERN_CONTENTION");
  if (s == nullptr || *s == '\0' || std::strcmp(s, "auto") == 0) return ContentionMode::Auto;
  if (std::strcmp(s, "off") == 0 || std::strcmp(s, "0") == 0) return ContentionMode::Off;
  if (std::strcmp(s, "force") == 0 || std::strcmp(s, "1") == 0) return ContentionMode::Force;
  return ContentionMode::Auto;  // the Python package validates the variable and says so
}

// A positive number from the environment, or `fallback` (read once by the callers below).
double env_positive(const char* name, double fallback) {
  const char* s = std::getenv(name);
  if (s == nullptr || *s == '\0') return fallback;
  char* end = nullptr;
  const double x = std::strtod(s, &end);
  return (end != s && x > 0.0) ? x : fallback;
}

// For measurements (benchmarks/contention_trace.py), the rule's three numbers can be overridden:
// DEEPKERN_CONTENTION_SHARE (above 1 never shrinks), _WINDOW_US and _STRIKES.
double busy_share() {
  static const double v = env_positive("DEEPKERN_CONTENTION_SHARE", kBusyShare);
  return v;
}
int64_t window_ns() {
  static const int64_t v = int64_t(env_positive("DEEPKERN_CONTENTION_WINDOW_US", kWindowNs / 1e3) * 1e3);
  return v;
}
int strikes_needed() {
  static const int v = int(env_positive("DEEPKERN_CONTENTION_STRIKES", kStrikes));
  return v;
}

std::atomic<int>& mode_setting() {
  static std::atomic<int> m{static_cast<int>(mode_from_env())};
  return m;
}

// One calling thread's view: its own scheduler file, the last reading and the mode it is in.
struct Monitor {
  int fd = -2;  // -2 not opened yet, -1 unavailable
  int64_t t_last = 0, wait_last = 0;
  bool busy = false, testing = false;
  int strikes = 0;  // windows in a row above the threshold
  int64_t hold_until = 0, hold = kHoldMinNs;
  double share = 0.0;
  int64_t windows = 0, busy_windows = 0;  // readings taken, and how many left the thread in busy mode

  ~Monitor() {
    if (fd >= 0) close(fd);
  }

  // Nanoseconds this thread has waited on a run queue, or -1.
  int64_t waited() {
    if (fd == -2) fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buf[96];
    const ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0) return -1;
    buf[n] = '\0';
    char* end = nullptr;
    std::strtoll(buf, &end, 10);  // time on the CPU
    if (end == buf) return -1;
    return std::strtoll(end, nullptr, 10);  // time runnable but waiting
  }

  void update(int64_t now) {
    const int64_t w = waited();
    if (w < 0) {
      fd = -1;
      busy = false;
      return;
    }
    const int64_t span = now - t_last;
    const int64_t dw = w - wait_last;
    t_last = now;
    wait_last = w;
    if (span > kStaleNs) return;  // idle time would dilute the share: start a new window
    share = double(dw) / double(span);
    ++windows;
    const bool waiting = share > busy_share();
    strikes = waiting ? strikes + 1 : 0;
    if (busy) {
      if (waiting) {
        hold_until = now + hold;  // waiting even alone: the machine is loaded beyond its cores
      } else if (now >= hold_until) {
        busy = false;  // test one window with full teams
        testing = true;
      }
    } else if (waiting && (testing || strikes >= strikes_needed())) {
      hold = testing ? (2 * hold < kHoldMaxNs ? 2 * hold : kHoldMaxNs) : kHoldMinNs;
      busy = true;
      testing = false;
      hold_until = now + hold;
    } else if (!waiting) {
      testing = false;
      hold = kHoldMinNs;
    }
    busy_windows += busy ? 1 : 0;
  }
};

Monitor& monitor() {
  static thread_local Monitor m;
  return m;
}

}  // namespace

void set_contention_mode(ContentionMode m) { mode_setting().store(static_cast<int>(m), std::memory_order_relaxed); }

ContentionMode contention_mode() { return static_cast<ContentionMode>(mode_setting().load(std::memory_order_relaxed)); }

ContentionState contention_state() {
  Monitor& m = monitor();
  if (m.fd == -2) m.waited();
  return {contention_mode(), m.fd >= 0, m.busy, m.share, m.windows, m.busy_windows};
}

namespace {
// The contention rule alone: `logical`, or 1 while the calling thread finds the machine busy.
int contention_team(int logical) {
  switch (contention_mode()) {
    case ContentionMode::Off: return logical;
    case ContentionMode::Force: return 1;
    case ContentionMode::Auto: break;
  }
  Monitor& m = monitor();
  if (m.fd == -1) return logical;
  const int64_t now = now_ns();
  if (now - m.t_last >= window_ns()) m.update(now);
  return m.busy ? 1 : logical;
}
}  // namespace

int team(int logical) {
  if (logical <= 1) return logical;
  if (contention_team(logical) == 1 || warm::region_stays_alone()) return 1;
  warm::note_team_region();
  return logical;
}

}  // namespace dk::cpu
