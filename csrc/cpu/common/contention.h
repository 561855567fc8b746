#pragma once
// Whether the machine is oversubscribed, as the calling thread sees it: the state behind team()
// (parallel.h), for the Python package's switch and its tests.

namespace dk::cpu {

enum class ContentionMode { Auto = 0, Off = 1, Force = 2 };

struct ContentionState {
  ContentionMode mode;
  bool available;                 // the scheduler's per-thread statistics can be read
  bool busy;                      // regions run on the calling thread alone (auto mode)
  double share;                   // the last window's share of wall time spent runnable but waiting
  int64_t windows, busy_windows;  // the calling thread's readings so far, and those that left it busy
};

void set_contention_mode(ContentionMode m);
ContentionMode contention_mode();
ContentionState contention_state();

}  // namespace dk::cpu
