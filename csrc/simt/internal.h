#pragma once
// The simulator's internal state, shared by scheduler.cpp (blocks, barriers, launch),
// collectives.cpp (warp collectives) and tensor.cpp (mma, ldmatrix, cp.async).
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "simt/fiber.h"
#include "simt/simt.h"

namespace simt {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class St : unsigned char { Ready, Barrier, Warp, Grid, Done };

struct Copy {  // one pending cp.async
  void* dst;
  const void* src;
  int bytes;
  bool pred;
};

struct Block;
struct Thread {
  Ctx ctx;  // what threadIdx & co. read while this fiber runs
  Fiber fiber;
  Block* blk = nullptr;
  int linear = 0, lane = 0, warp = 0;
  St st = St::Done;
  const char* what = "";  // the sync point it waits at, for reports
  const char* file = "";
  int line = 0;
  int bar_kind = 0, bar_pred = 0, bar_result = 0;
  WarpOp* op = nullptr;
  std::vector<Copy> uncommitted;             // cp.async issued since the last commit
  std::vector<std::vector<Copy>> in_flight;  // committed groups, oldest first
};

enum class Order { Ascending, Reversed, Random };

struct Launch {
  Body body;
  void* args;
  dim3 grid, block;
  size_t smem;
  std::string where;
  bool cooperative;
  Order order;
  uint64_t seed;
};

struct Block {
  Launch* L = nullptr;
  uint3 idx{};
  long long linear = 0;
  Thread** threads = nullptr;  // n threads, linear order
  int n = 0;
  unsigned char* dyn = nullptr;           // dynamic shared memory (L->smem bytes, then a guard)
  std::vector<unsigned char> dyn_owned;   // its storage (plain build)
  std::vector<unsigned char> smem_image;  // static shared memory while switched out (cooperative)
  std::vector<int> order;
  uint64_t rng = 0;
  std::string failure;  // set by fail(): the launch ends with this message
  ~Block();
};

// Per OS thread: the scheduler's own context and the fibers it runs.
struct Worker {
  Fiber sched;
  std::vector<Thread*> pool;  // owned; a block uses a contiguous run of them
  ~Worker() {
    for (Thread* t : pool) delete t;
  }
  Thread* current = nullptr;
  Block* smem_owner = nullptr;   // whose static shared memory the section holds (cooperative)
  std::vector<size_t> redzones;  // ASan build: offsets of the red zones in the section
  Worker();
};
Worker& worker();

// Static shared memory of the calling OS thread (the simt_smem section, see smem_begin.cpp).
unsigned char* static_smem();
size_t static_smem_size();
bool in_shared(const void* p, size_t bytes);

// "block (x,y,z) thread (x,y,z)" and the report format of every simulator error.
std::string describe(const Thread* t);
std::string report(const Thread* t, const std::string& what, const char* file, int line);

}  // namespace simt
