// The fiber switch. simt_switch(void** save_sp, void* new_sp) pushes the callee-saved registers
// (and the FP control words) on the current stack, stores sp, loads new_sp and pops the other
// context's registers: no system call, no signal mask (swapcontext costs ~1 us for that).
#include "simt/fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <new>
#include <stdexcept>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define SIMT_ASAN 1
#endif

#if defined(__x86_64__) || defined(__aarch64__)
#define SIMT_ASM_SWITCH 1
extern "C" void simt_switch(void** save_sp, void* new_sp);
extern "C" void simt_fiber_start();  // first "return address" of a new fiber
#else
#include <ucontext.h>
#endif

#if defined(__x86_64__)
asm(R"(
  .text
  .globl simt_switch
  .hidden simt_switch
  .type simt_switch,@function
simt_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size simt_switch,.-simt_switch

  .globl simt_fiber_start
  .hidden simt_fiber_start
  .type simt_fiber_start,@function
simt_fiber_start:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size simt_fiber_start,.-simt_fiber_start
)");
#elif defined(__aarch64__)
asm(R"(
  .text
  .globl simt_switch
  .hidden simt_switch
  .type simt_switch,%function
simt_switch:
  sub sp, sp, #160
  stp x19, x20, [sp, #0]
  stp x21, x22, [sp, #16]
  stp x23, x24, [sp, #32]
  stp x25, x26, [sp, #48]
  stp x27, x28, [sp, #64]
  stp x29, x30, [sp, #80]
  stp d8, d9, [sp, #96]
  stp d10, d11, [sp, #112]
  stp d12, d13, [sp, #128]
  stp d14, d15, [sp, #144]
  mov x2, sp
  str x2, [x0]
  mov sp, x1
  ldp x19, x20, [sp, #0]
  ldp x21, x22, [sp, #16]
  ldp x23, x24, [sp, #32]
  ldp x25, x26, [sp, #48]
  ldp x27, x28, [sp, #64]
  ldp x29, x30, [sp, #80]
  ldp d8, d9, [sp, #96]
  ldp d10, d11, [sp, #112]
  ldp d12, d13, [sp, #128]
  ldp d14, d15, [sp, #144]
  add sp, sp, #160
  ret
  .size simt_switch,.-simt_switch

  .globl simt_fiber_start
  .hidden simt_fiber_start
  .type simt_fiber_start,%function
simt_fiber_start:
  mov x0, x19
  blr x20
  brk #0
  .size simt_fiber_start,.-simt_fiber_start
)");
#endif

namespace simt {

Fiber::~Fiber() {
  if (stack) munmap(stack - getpagesize(), size + getpagesize());
#if !defined(SIMT_ASM_SWITCH)
  delete static_cast<ucontext_t*>(uctx);
#endif
}

void fiber_init(Fiber& f, size_t stack_bytes, void (*entry)(void*), void* arg) {
  const size_t page = getpagesize();
  if (!f.stack) {
    f.size = (stack_bytes + page - 1) / page * page;
    void* m = mmap(nullptr, f.size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) throw std::bad_alloc();
    mprotect(m, page, PROT_NONE);  // guard page: a stack overflow faults instead of corrupting
    f.stack = static_cast<char*>(m) + page;
  }
#if defined(SIMT_ASAN)
  __asan_unpoison_memory_region(f.stack, f.size);  // an abandoned fiber may have left poisoned frames
#endif
  f.asan_fake = nullptr;
  auto top = reinterpret_cast<uintptr_t>(f.stack + f.size) & ~uintptr_t(15);
  auto* s = reinterpret_cast<uint64_t*>(top);
#if defined(__x86_64__)
  // Popped by simt_switch, lowest first: control words, r15, r14, r13, r12, rbx, rbp, return address.
  s[-1] = reinterpret_cast<uint64_t>(&simt_fiber_start);
  s[-2] = 0;                                  // rbp
  s[-3] = 0;                                  // rbx
  s[-4] = reinterpret_cast<uint64_t>(arg);    // r12
  s[-5] = reinterpret_cast<uint64_t>(entry);  // r13
  s[-6] = s[-7] = 0;                          // r14, r15
  s[-8] = 0x1F80 | (uint64_t(0x037F) << 32);  // mxcsr, x87 control word (the defaults)
  f.sp = s - 8;
#elif defined(__aarch64__)
  uint64_t* fr = s - 20;  // 160-byte frame: x19..x30, d8..d15
  for (int i = 0; i < 20; ++i) fr[i] = 0;
  fr[0] = reinterpret_cast<uint64_t>(arg);                 // x19
  fr[1] = reinterpret_cast<uint64_t>(entry);               // x20
  fr[11] = reinterpret_cast<uint64_t>(&simt_fiber_start);  // x30
  f.sp = fr;
#else
  auto* uc = static_cast<ucontext_t*>(f.uctx);
  if (!uc) f.uctx = uc = new ucontext_t();
  getcontext(uc);
  uc->uc_stack.ss_sp = f.stack;
  uc->uc_stack.ss_size = f.size;
  uc->uc_link = nullptr;
  makecontext(uc, reinterpret_cast<void (*)()>(entry), 1, arg);  // one pointer argument: LP64 glibc passes it whole
#endif
}

#if defined(SIMT_ASAN)
// Fibers only ever switch with their OS thread's scheduler, whose stack bounds ASan reports to the
// fiber on its side of each switch; they are kept here for the switch back.
static thread_local const void* os_stack_lo = nullptr;
static thread_local size_t os_stack_size = 0;
#endif

void fiber_started() {
#if defined(SIMT_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &os_stack_lo, &os_stack_size);
#endif
}

void switch_to(Fiber& from, Fiber& to, bool dying) {
#if defined(SIMT_ASAN)
  if (to.stack)
    __sanitizer_start_switch_fiber(dying ? nullptr : &from.asan_fake, to.stack, to.size);
  else
    __sanitizer_start_switch_fiber(dying ? nullptr : &from.asan_fake, os_stack_lo, os_stack_size);
#else
  (void)dying;
#endif
#if defined(SIMT_ASM_SWITCH)
  simt_switch(&from.sp, to.sp);
#else
  if (!from.uctx) from.uctx = new ucontext_t();
  swapcontext(static_cast<ucontext_t*>(from.uctx), static_cast<ucontext_t*>(to.uctx));
#endif
#if defined(SIMT_ASAN)
  // Back in `from`; a fiber was resumed by the scheduler and learns its stack's bounds.
  if (from.stack)
    __sanitizer_finish_switch_fiber(from.asan_fake, &os_stack_lo, &os_stack_size);
  else
    __sanitizer_finish_switch_fiber(from.asan_fake, nullptr, nullptr);
#endif
}

}  // namespace simt
