// Runs launches: blocks on OpenMP threads, each block's threads as fibers that the block's
// scheduler resumes one at a time (DEEPKERN_SIM_ORDER) until each reaches its next sync point.
// When none can run, it completes warp collectives and __syncthreads, or reports the deadlock.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>

#include "simt/internal.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

extern "C" {
// Linker-made bounds of the simt_smem section (link-time image; per-thread copies via the markers).
extern unsigned char __start_simt_smem[];
extern unsigned char __stop_simt_smem[];
}

namespace simt {

extern thread_local unsigned char simt_smem_begin[16];  // smem_begin.cpp: first in the section
extern thread_local unsigned char simt_smem_end[16];    // smem_end.cpp: last in the section

namespace {

constexpr size_t kStack = 256 * 1024;  // per simulated thread (mmap'd lazily, reused)
constexpr size_t kGuard = 64;          // poisoned bytes after dynamic shared memory
constexpr size_t kMaxDynamicDefault = 48 * 1024, kMaxDynamicOptin = 227 * 1024;

std::mutex g_attr_mutex;
std::map<const void*, size_t> g_max_dynamic;  // set_max_dynamic_shared per kernel

uint64_t next_random(uint64_t& s) {  // splitmix64
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void parse_order(Launch& L) {
  const char* env = std::getenv("DEEPKERN_SIM_ORDER");
  std::string v = env ? env : "ascending";
  L.order = Order::Ascending;
  L.seed = 0;
  if (v == "ascending" || v.empty()) return;
  if (v == "reversed") {
    L.order = Order::Reversed;
    return;
  }
  if (v.rfind("random:", 0) == 0 && v.size() > 7) {
    char* end = nullptr;
    L.seed = std::strtoull(v.c_str() + 7, &end, 10);
    if (*end == '\0') {
      L.order = Order::Random;
      return;
    }
  }
  throw Error("DEEPKERN_SIM_ORDER must be ascending, reversed or random:SEED, got '" + v + "'");
}

// The next pass's thread order (random: reshuffled every pass, reproducibly per block).
void reorder(Block& b) {
  if (b.L->order != Order::Random) return;
  for (int i = b.n - 1; i > 0; --i) std::swap(b.order[i], b.order[next_random(b.rng) % (i + 1)]);
}

[[noreturn]] void raise_at(const Thread* t, const std::string& what) { throw Error(report(t, what, t->file, t->line)); }

void thread_main(void* p) {
  fiber_started();
  auto* t = static_cast<Thread*>(p);
  try {
    t->blk->L->body(t->blk->L->args);
  } catch (const std::exception& e) {  // nothing in kernel code should throw; report it, do not unwind past
    if (t->blk->failure.empty()) t->blk->failure = report(t, std::string("exception in kernel: ") + e.what(), "?", 0);
  } catch (...) {
    if (t->blk->failure.empty()) t->blk->failure = report(t, "unknown exception in kernel", "?", 0);
  }
  t->st = St::Done;
  t->what = "exit";
  switch_to(t->fiber, worker().sched, true);
  __builtin_trap();  // a finished fiber is never resumed
}

void resume(Worker& w, Thread* t) {
  w.current = t;
  tls_ctx = &t->ctx;
  switch_to(w.sched, t->fiber);
  w.current = nullptr;
  tls_ctx = nullptr;
}

bool same_site(const Thread* a, const Thread* b) {
  return a->line == b->line && (a->file == b->file || std::strcmp(a->file, b->file) == 0);
}

std::string at(const Thread* t) {
  if (t->st == St::Done) return describe(t) + " has exited";
  return describe(t) + " waits at " + t->what + " (" + t->file + ":" + std::to_string(t->line) + ")";
}

// Completes every warp collective whose named lanes have all posted it. False: nothing completed.
bool resolve_warps(Block& b) {
  bool progressed = false;
  for (int w0 = 0; w0 < b.n; w0 += 32) {
    const int lanes = std::min(32, b.n - w0);
    Thread** warp = b.threads + w0;
    for (int l = 0; l < lanes; ++l) {
      Thread* t = warp[l];
      if (t->st != St::Warp) continue;
      const unsigned mask = t->op->mask;
      WarpOp* ops[32] = {};
      bool complete = true;
      for (int k = 0; k < 32; ++k) {
        if (!(mask >> k & 1)) continue;
        Thread* o = k < lanes ? warp[k] : nullptr;
        if (!o || o->st == St::Done)
          raise_at(
              t, std::string(t->what) + " with mask 0x" +
                     [&] {
                       char s[16];
                       std::snprintf(s, 16, "%08x", mask);
                       return std::string(s);
                     }() +
                     " names lane " + std::to_string(k) +
                     (o ? ", which has exited" : ", which does not exist in this block"));
        if (o->st != St::Warp || o->op->resolve != t->op->resolve || o->op->mask != mask ||
            (t->op->resolve != resolve_syncwarp && !same_site(o, t))) {
          complete = false;
          break;
        }
        ops[k] = o->op;
      }
      if (!complete) continue;
      t->op->resolve(ops, mask);
      for (int k = 0; k < 32; ++k)
        if (ops[k]) warp[k]->st = St::Ready;
      progressed = true;
    }
  }
  return progressed;
}

// Nothing can run and no collective completes: say why, naming two threads that disagree.
[[noreturn]] void deadlock(Block& b) {
  for (int i = 0; i < b.n; ++i) {
    Thread* t = b.threads[i];
    if (t->st != St::Warp) continue;
    for (int k = 0; k < 32; ++k) {
      if (!(t->op->mask >> k & 1)) continue;
      Thread* o = b.threads[t->warp * 32 + k];
      if (o != t && !(o->st == St::Warp && same_site(o, t) && o->op->mask == t->op->mask))
        raise_at(
            t, std::string(t->what) + " cannot complete: lane " + std::to_string(k) + " (" + at(o) + ") is not at it");
    }
  }
  Thread* first = nullptr;
  for (int i = 0; i < b.n; ++i) {
    Thread* t = b.threads[i];
    if (t->st == St::Done) continue;
    if (!first) {
      first = t;
    } else if (t->st != first->st || !same_site(t, first)) {
      raise_at(first, std::string("divergent barrier: this thread waits at ") + first->what + ", but " + at(t));
    }
  }
  raise_at(first, "deadlock");
}

enum class Outcome { Done, AtGridSync };

// Runs the block's fibers until all have exited or all wait at grid_sync.
Outcome run(Worker& w, Block& b) {
  for (;;) {
    reorder(b);
    for (int i : b.order) {
      Thread* t = b.threads[i];
      if (t->st != St::Ready) continue;
      resume(w, t);
      if (!b.failure.empty()) throw Error(b.failure);
    }
    if (resolve_warps(b)) continue;
    Thread* first = nullptr;
    bool all_same = true;
    for (int i = 0; i < b.n; ++i) {
      Thread* t = b.threads[i];
      if (t->st == St::Done) continue;
      if (!first)
        first = t;
      else if (t->st != first->st || !same_site(t, first))
        all_same = false;
    }
    if (!first) return Outcome::Done;
    if (!all_same || first->st == St::Warp) deadlock(b);
    if (first->st == St::Grid) return Outcome::AtGridSync;
    int count = 0, live = 0;  // all live threads at one __syncthreads: release them
    for (int i = 0; i < b.n; ++i)
      if (b.threads[i]->st == St::Barrier) ++live, count += b.threads[i]->bar_pred;
    const int result = first->bar_kind == 1 ? count : first->bar_kind == 2 ? count == live : count > 0;
    for (int i = 0; i < b.n; ++i)
      if (b.threads[i]->st == St::Barrier) b.threads[i]->bar_result = result, b.threads[i]->st = St::Ready;
  }
}

uint3 coords(long long linear, dim3 d) {
  return uint3{unsigned(linear % d.x), unsigned(linear / d.x % d.y), unsigned(linear / ((long long)d.x * d.y))};
}

// Sets up block `linear` on fibers pool[first .. first + n) of this worker.
void prepare(Worker& w, Block& b, Launch& L, long long linear, size_t first) {
  const int n = int(L.block.x * L.block.y * L.block.z);
  while (w.pool.size() < first + n) w.pool.push_back(new Thread());
  b.L = &L;
  b.linear = linear;
  b.idx = coords(linear, L.grid);
  b.n = n;
  b.threads = w.pool.data() + first;
#if defined(__SANITIZE_ADDRESS__)
  b.dyn = static_cast<unsigned char*>(std::malloc(L.smem ? L.smem : 1));  // exact size: ASan's red zone follows
  std::memset(b.dyn, 0xFF, L.smem);
#else
  b.dyn_owned.assign(L.smem + kGuard, 0xFF);
  b.dyn = b.dyn_owned.data();
#endif
  b.order.resize(n);
  for (int i = 0; i < n; ++i) b.order[i] = L.order == Order::Reversed ? n - 1 - i : i;
  b.rng = L.seed * 0x9E3779B97F4A7C15ull + (uint64_t)linear;
  for (int i = 0; i < n; ++i) {
    Thread* t = b.threads[i];
    t->ctx = Ctx{coords(i, L.block), b.idx, L.block, L.grid, b.dyn};
    t->blk = &b;
    t->linear = i;
    t->lane = i % 32;
    t->warp = i / 32;
    t->st = St::Ready;
    t->what = "start";
    t->file = "";
    t->line = 0;
    t->uncommitted.clear();
    t->in_flight.clear();
    fiber_init(t->fiber, kStack, thread_main, t);
  }
}

// Static shared memory contents: fill / save / restore. In the ASan build the red zones
// (see simt.h) and the two markers are poisoned in between, so the scheduler lifts that first.
void smem_unpoison() {
#if defined(__SANITIZE_ADDRESS__)
  __asan_unpoison_memory_region(static_smem(), static_smem_size());
#endif
}
void smem_poison() {
#if defined(__SANITIZE_ADDRESS__)
  for (size_t off : worker().redzones) __asan_poison_memory_region(static_smem() + off, 32);
  __asan_poison_memory_region(simt_smem_begin, 16);
  __asan_poison_memory_region(simt_smem_end, 16);
#endif
}
void smem_fill() {
  smem_unpoison();
  std::memset(static_smem(), 0xFF, static_smem_size());
  smem_poison();
}

void check_guards(const Block& b) {
  const Thread* t0 = b.threads[0];
#if !defined(__SANITIZE_ADDRESS__)  // there ASan reports the access itself
  for (size_t i = 0; i < kGuard; ++i)
    if (b.dyn[b.L->smem + i] != 0xFF)
      throw Error(report(t0,
                         "a thread wrote past the end of dynamic shared memory (" + std::to_string(b.L->smem) +
                             " bytes; found after the block ended)",
                         "?", 0));
  for (int i = 0; i < 16; ++i)
    if (simt_smem_begin[i] != 0xFF || simt_smem_end[i] != 0xFF)
      throw Error(report(t0, "a thread wrote outside static shared memory (found after the block ended)", "?", 0));
#else
  (void)t0;
#endif
}

// Cooperative launches run all blocks on one OS thread; the section holds one block's static
// shared memory at a time, swapped at grid_sync.
void own_smem(Worker& w, Block& b) {
  if (w.smem_owner == &b) return;
  smem_unpoison();
  if (w.smem_owner) w.smem_owner->smem_image.assign(static_smem(), static_smem() + static_smem_size());
  std::memcpy(static_smem(), b.smem_image.data(), static_smem_size());
  smem_poison();
  w.smem_owner = &b;
}

void run_cooperative(Launch& L, long long blocks) {
  Worker& w = worker();
  const size_t n = size_t(L.block.x) * L.block.y * L.block.z;
  while (w.pool.size() < blocks * n) w.pool.push_back(new Thread());  // no reallocation below
  std::vector<Block> bs(blocks);
  for (long long i = 0; i < blocks; ++i) {
    prepare(w, bs[i], L, i, i * n);
    bs[i].smem_image.assign(static_smem_size(), 0xFF);
  }
  std::vector<bool> done(blocks, false);
  w.smem_owner = nullptr;
  struct Reset {
    Worker& w;
    ~Reset() { w.smem_owner = nullptr; }
  } reset{w};
  for (;;) {
    long long waiting = 0, finished = 0;
    const Block* finished_block = nullptr;
    for (long long k = 0; k < blocks; ++k) {
      const long long i = L.order == Order::Reversed ? blocks - 1 - k : k;
      if (done[i]) {
        ++finished;
        finished_block = &bs[i];
        continue;
      }
      own_smem(w, bs[i]);
      if (run(w, bs[i]) == Outcome::Done) {
        check_guards(bs[i]);
        done[i] = true;
        ++finished;
        finished_block = &bs[i];
      } else {
        ++waiting;
      }
    }
    if (waiting == 0) return;
    if (finished > 0) {
      const Block* stuck = nullptr;
      for (long long i = 0; i < blocks && !stuck; ++i)
        if (!done[i]) stuck = &bs[i];
      Thread* t = nullptr;
      for (int i = 0; i < stuck->n && !t; ++i)
        if (stuck->threads[i]->st == St::Grid) t = stuck->threads[i];
      raise_at(t, "grid_sync cannot complete: block (" + std::to_string(finished_block->idx.x) + "," +
                      std::to_string(finished_block->idx.y) + "," + std::to_string(finished_block->idx.z) +
                      ") has exited without reaching it");
    }
    for (auto& b : bs)
      for (int i = 0; i < b.n; ++i)
        if (b.threads[i]->st == St::Grid) b.threads[i]->st = St::Ready;
  }
}

void run_block(Launch& L, long long linear) {
  Worker& w = worker();
  Block b;
  prepare(w, b, L, linear, 0);
  smem_fill();
  if (run(w, b) == Outcome::AtGridSync) {
    Thread* t = b.threads[0];
    for (int i = 0; i < b.n; ++i)
      if (b.threads[i]->st == St::Grid) t = b.threads[i];
    raise_at(t, "grid_sync in a kernel not launched with launch_cooperative");
  }
  check_guards(b);
}

int sim_threads() {
  if (const char* e = std::getenv("DEEPKERN_SIM_THREADS")) {
    const int n = std::atoi(e);
    if (n > 0) return n;
  }
  return omp_get_max_threads();
}

void validate(const Launch& L, const void* kernel) {
  const dim3 g = L.grid, k = L.block;
  const long long threads = (long long)k.x * k.y * k.z;
  auto bad = [&](const std::string& why) { throw Error("deepkern simt: invalid launch by " + L.where + ": " + why); };
  if (g.x == 0 || g.y == 0 || g.z == 0 || threads == 0) bad("empty grid or block");
  if (g.x > 2147483647u || g.y > 65535 || g.z > 65535) bad("grid dimensions over the limits (2^31-1, 65535, 65535)");
  if (k.x > 1024 || k.y > 1024 || k.z > 64 || threads > 1024)
    bad("block of more than 1024 threads or over (1024,1024,64)");
  size_t limit = kMaxDynamicDefault;
  {
    std::lock_guard<std::mutex> lock(g_attr_mutex);
    auto it = g_max_dynamic.find(kernel);
    if (it != g_max_dynamic.end()) limit = std::max(limit, it->second);
  }
  if (L.smem > limit)
    bad(std::to_string(L.smem) +
        " bytes of dynamic shared memory need set_max_dynamic_shared(kernel, bytes) first (allowed: " +
        std::to_string(limit) + ")");
}

}  // namespace

Block::~Block() {
#if defined(__SANITIZE_ADDRESS__)
  std::free(dyn);
#endif
}

Worker::Worker() {
#if defined(__SANITIZE_ADDRESS__)
  // This OS thread's copy of the section is still the linker's image: find the red zones.
  static const char pattern[32] = SIMT_REDZONE_PATTERN;
  for (size_t off = 0; off + 32 <= static_smem_size(); off += 16)
    if (std::memcmp(static_smem() + off, pattern, 32) == 0) redzones.push_back(off);
#endif
}

Worker& worker() {
  static thread_local Worker w;
  return w;
}

unsigned char* static_smem() {
  unsigned char* p = simt_smem_begin;
  asm("" : "+r"(p));  // the section, not just the 16-byte marker: hide the marker's bounds from the optimiser
  return p;
}
size_t static_smem_size() {
  static const size_t size = [] {
    const size_t linked = size_t(__stop_simt_smem - __start_simt_smem);
    const size_t here = size_t(simt_smem_end + 16 - simt_smem_begin);
    if (linked != here)
      throw Error(
          "deepkern simt: the simt_smem section is not bracketed by smem_begin.cpp/smem_end.cpp "
          "(they must be the first and last objects linked)");
    return here;
  }();
  return size;
}

bool in_shared(const void* p, size_t bytes) {
  auto* c = static_cast<const unsigned char*>(p);
  const Thread* t = worker().current;
  if (c >= static_smem() && c + bytes <= static_smem() + static_smem_size()) return true;
  return t && c >= t->blk->dyn && c + bytes <= t->blk->dyn + t->blk->L->smem;
}

std::string describe(const Thread* t) {
  const uint3 b = t->blk->idx, i = t->ctx.thread_idx;
  return "block (" + std::to_string(b.x) + "," + std::to_string(b.y) + "," + std::to_string(b.z) + ") thread (" +
         std::to_string(i.x) + "," + std::to_string(i.y) + "," + std::to_string(i.z) + ")";
}

std::string report(const Thread* t, const std::string& what, const char* file, int line) {
  return "deepkern simt: " + what + " [kernel launched by " + t->blk->L->where + "; " + describe(t) + " at " + file +
         ":" + std::to_string(line) + "]";
}

void fail(const std::string& what, const char* file, int line) {
  Worker& w = worker();
  Thread* t = w.current;
  if (!t) throw Error("deepkern simt: " + what + " (" + file + ":" + std::to_string(line) + ")");
  if (t->blk->failure.empty()) t->blk->failure = report(t, what, file, line);
  t->st = St::Done;
  switch_to(t->fiber, w.sched, true);  // abandoned: the scheduler throws the failure on its own stack
  __builtin_trap();
}

int block_barrier(int kind, int pred, const char* file, int line) {
  static const char* names[] = {"__syncthreads", "__syncthreads_count", "__syncthreads_and", "__syncthreads_or"};
  Worker& w = worker();
  Thread* t = w.current;
  t->st = St::Barrier;
  t->bar_kind = kind;
  t->bar_pred = pred;
  t->what = names[kind];
  t->file = file;
  t->line = line;
  switch_to(t->fiber, w.sched);
  return t->bar_result;
}

void grid_sync(const char* file, int line) {
  Worker& w = worker();
  Thread* t = w.current;
  t->st = St::Grid;
  t->what = "grid_sync";
  t->file = file;
  t->line = line;
  switch_to(t->fiber, w.sched);
}

void warp_collective(WarpOp& op, const char* what, const char* file, int line) {
  Worker& w = worker();
  Thread* t = w.current;
  if (!(op.mask >> t->lane & 1)) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%08x", op.mask);
    fail(std::string(what) + ": mask " + hex + " does not name the calling lane " + std::to_string(t->lane), file,
         line);
  }
  if (op.width < 1 || op.width > 32 || (op.width & (op.width - 1)))
    fail(std::string(what) + ": width " + std::to_string(op.width) + " is not a power of 2 in [1, 32]", file, line);
  t->op = &op;
  t->st = St::Warp;
  t->what = what;
  t->file = file;
  t->line = line;
  switch_to(t->fiber, w.sched);
}

unsigned active_mask() {
  const Thread* t = worker().current;
  const Block& b = *t->blk;
  unsigned m = 0;
  for (int k = 0; k < 32 && t->warp * 32 + k < b.n; ++k)
    if (b.threads[t->warp * 32 + k]->st != St::Done) m |= 1u << k;
  return m;
}

void set_max_dynamic_shared(const void* kernel, size_t bytes) {
  if (bytes > kMaxDynamicOptin)
    throw Error("deepkern simt: set_max_dynamic_shared(" + std::to_string(bytes) +
                ") is over the 227 KiB a block can have");
  std::lock_guard<std::mutex> lock(g_attr_mutex);
  g_max_dynamic[kernel] = bytes;
}

void launch_erased(bool cooperative, const void* kernel, dim3 grid, dim3 block, size_t smem, const std::string& where,
                   Body body, void* args) {
  Launch L{body, args, grid, block, smem, where, cooperative, Order::Ascending, 0};
  parse_order(L);
  validate(L, kernel);
  static_smem_size();  // checks the section's layout once
  const long long blocks = (long long)grid.x * grid.y * grid.z;
  if (cooperative) return run_cooperative(L, blocks);
  const int threads = (int)std::min<long long>(sim_threads(), blocks);
  auto block_at = [&](long long k) { return L.order == Order::Reversed ? blocks - 1 - k : k; };
  if (threads <= 1) {
    for (long long k = 0; k < blocks; ++k) run_block(L, block_at(k));
    return;
  }
  std::string error;
  bool stop = false;
  std::mutex m;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (long long k = 0; k < blocks; ++k) {
    if (__atomic_load_n(&stop, __ATOMIC_RELAXED)) continue;
    try {
      run_block(L, block_at(k));
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(m);
      if (error.empty()) error = e.what();
      __atomic_store_n(&stop, true, __ATOMIC_RELAXED);
    }
  }
  if (!error.empty()) throw Error(error);
}

}  // namespace simt
