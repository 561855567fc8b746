#pragma once
// The warm rule behind threads_for and team() (parallel.h): a call of modest size (between
// warm_min_us() and parallel_min_us() of one core's work) splits its work logically over every
// thread, but its regions run on the calling thread alone unless an OpenMP worker is probably still
// awake from the last region, or calls come back to back (a tight loop, where one wake-up is
// repaid by the next calls). Results follow the logical split, so they are the same either way.
#include <cstdint>

namespace dk::cpu::warm {

// threads_for's verdict on the work it was asked about: true when it is of modest size. It covers
// the next region the calling thread starts (team() reads and clears it).
void mark_modest_call(bool modest);

// team(): whether this region should run on the calling thread alone (a modest call, a cold worker).
bool region_stays_alone();

// team(): a region of more than one thread is starting.
void note_team_region();

// The calling thread's modest calls so far, and how many of them ran a team (tests, benchmarks).
struct Counts {
  int64_t modest_calls = 0, with_team = 0;
};
Counts counts();

}  // namespace dk::cpu::warm
