#pragma once
// Fibers for the simulator: a register-only context switch (callee-saved registers and the stack
// pointer; x86-64 and aarch64 assembly in fiber.cpp, ucontext elsewhere) on mmap'd stacks with a
// guard page. Under AddressSanitizer every switch is announced with the fiber-switch hooks.
#include <cstddef>

namespace simt {

struct Fiber {
  void* sp = nullptr;     // saved stack pointer while switched out
  char* stack = nullptr;  // lowest usable byte (nullptr: the OS thread's own stack)
  size_t size = 0;
  void* asan_fake = nullptr;
  void* uctx = nullptr;  // ucontext fallback only
  ~Fiber();
};

// Prepares f (allocating its stack once) to run entry(arg) from the top on its next switch_to.
// entry must never return: it ends by switching away for good (switch_to(..., dying = true)).
void fiber_init(Fiber& f, size_t stack_bytes, void (*entry)(void*), void* arg);
// The first thing a fiber's entry function calls (ASan bookkeeping).
void fiber_started();
// Saves the current context into `from` and resumes `to`; returns when someone switches back.
void switch_to(Fiber& from, Fiber& to, bool dying = false);

}  // namespace simt
