#pragma once
// CUDA device functions for the simulator: block barriers, warp shuffles/votes/reductions (warp
// collectives, resolved in scheduler.cpp), real atomics (blocks run on several OS threads), the
// fast-math and bit intrinsics, and the half/bfloat16 math that cuda_fp16.h/cuda_bf16.h leave
// device-only. Included by simt.h. Each synchronising call records its caller's file:line.
#include <type_traits>

#define SIMT_SITE const char *file = __builtin_FILE(), int line = __builtin_LINE()

// ---- block barriers ----
inline void __syncthreads(SIMT_SITE) { ::simt::block_barrier(0, 1, file, line); }
inline int __syncthreads_count(int pred, SIMT_SITE) { return ::simt::block_barrier(1, pred != 0, file, line); }
inline int __syncthreads_and(int pred, SIMT_SITE) { return ::simt::block_barrier(2, pred != 0, file, line); }
inline int __syncthreads_or(int pred, SIMT_SITE) { return ::simt::block_barrier(3, pred != 0, file, line); }
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// ---- warp collectives ----
namespace simt {
void resolve_shfl_idx(WarpOp**, unsigned);
void resolve_shfl_up(WarpOp**, unsigned);
void resolve_shfl_down(WarpOp**, unsigned);
void resolve_shfl_xor(WarpOp**, unsigned);
void resolve_ballot(WarpOp**, unsigned);
void resolve_syncwarp(WarpOp**, unsigned);
void resolve_reduce_add(WarpOp**, unsigned);
void resolve_reduce_min_s(WarpOp**, unsigned);
void resolve_reduce_min_u(WarpOp**, unsigned);
void resolve_reduce_max_s(WarpOp**, unsigned);
void resolve_reduce_max_u(WarpOp**, unsigned);
void resolve_reduce_and(WarpOp**, unsigned);
void resolve_reduce_or(WarpOp**, unsigned);
void resolve_reduce_xor(WarpOp**, unsigned);

inline uint64_t collective(Resolve r, const char* what, unsigned mask, uint64_t value, int arg, int width,
                           const char* file, int line) {
  WarpOp op{r, mask, arg, width, value, 0, nullptr, nullptr};
  warp_collective(op, what, file, line);
  return op.result;
}

template <typename T>
T shuffle(Resolve r, const char* what, unsigned mask, T var, int arg, int width, const char* file, int line) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffles move values of at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, static_cast<const void*>(&var), sizeof(T));
  bits = collective(r, what, mask, bits, arg, width, file, line);
  T out;
  std::memcpy(static_cast<void*>(&out), &bits, sizeof(T));
  return out;
}
}  // namespace simt

template <typename T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32, SIMT_SITE) {
  return ::simt::shuffle(::simt::resolve_shfl_idx, "__shfl_sync", mask, var, src_lane, width, file, line);
}
template <typename T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32, SIMT_SITE) {
  return ::simt::shuffle(::simt::resolve_shfl_up, "__shfl_up_sync", mask, var, (int)delta, width, file, line);
}
template <typename T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32, SIMT_SITE) {
  return ::simt::shuffle(::simt::resolve_shfl_down, "__shfl_down_sync", mask, var, (int)delta, width, file, line);
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32, SIMT_SITE) {
  return ::simt::shuffle(::simt::resolve_shfl_xor, "__shfl_xor_sync", mask, var, lane_mask, width, file, line);
}
inline unsigned __ballot_sync(unsigned mask, int pred, SIMT_SITE) {
  return (unsigned)::simt::collective(::simt::resolve_ballot, "__ballot_sync", mask, pred != 0, 0, 32, file, line);
}
inline int __any_sync(unsigned mask, int pred, SIMT_SITE) {
  return ::simt::collective(::simt::resolve_ballot, "__any_sync", mask, pred != 0, 0, 32, file, line) != 0;
}
inline int __all_sync(unsigned mask, int pred, SIMT_SITE) {
  return ::simt::collective(::simt::resolve_ballot, "__all_sync", mask, pred != 0, 0, 32, file, line) == mask;
}
inline void __syncwarp(unsigned mask = 0xffffffffu, SIMT_SITE) {
  ::simt::collective(::simt::resolve_syncwarp, "__syncwarp", mask, 0, 0, 32, file, line);
}
inline unsigned __activemask() { return ::simt::active_mask(); }

#define SIMT_REDUCE(NAME, T, RESOLVE)                                                                         \
  inline T NAME(unsigned mask, T value, SIMT_SITE) {                                                          \
    return (T)::simt::collective(::simt::RESOLVE, #NAME, mask, (uint64_t)(uint32_t)value, 0, 32, file, line); \
  }
SIMT_REDUCE(__reduce_add_sync, unsigned, resolve_reduce_add)
SIMT_REDUCE(__reduce_add_sync, int, resolve_reduce_add)
SIMT_REDUCE(__reduce_min_sync, unsigned, resolve_reduce_min_u)
SIMT_REDUCE(__reduce_min_sync, int, resolve_reduce_min_s)
SIMT_REDUCE(__reduce_max_sync, unsigned, resolve_reduce_max_u)
SIMT_REDUCE(__reduce_max_sync, int, resolve_reduce_max_s)
SIMT_REDUCE(__reduce_and_sync, unsigned, resolve_reduce_and)
SIMT_REDUCE(__reduce_or_sync, unsigned, resolve_reduce_or)
SIMT_REDUCE(__reduce_xor_sync, unsigned, resolve_reduce_xor)
#undef SIMT_REDUCE

// ---- atomics: real ones, on the word itself ----
namespace simt {
template <typename T, typename Bits, typename F>
T atomic_update(T* p, F f) {  // compare-and-swap loop for types without a native fetch-op
  static_assert(sizeof(T) == sizeof(Bits), "atomic width");
  Bits* w = reinterpret_cast<Bits*>(p);
  Bits old = __atomic_load_n(w, __ATOMIC_RELAXED), next;
  T o, n;
  do {
    std::memcpy(static_cast<void*>(&o), &old, sizeof(T));
    n = f(o);
    std::memcpy(&next, static_cast<const void*>(&n), sizeof(T));
  } while (!__atomic_compare_exchange_n(w, &old, next, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
  return o;
}
}  // namespace simt

#define SIMT_INT_ATOMICS(T)                                                                        \
  inline T atomicAdd(T* p, T v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }             \
  inline T atomicSub(T* p, T v) { return __atomic_fetch_sub(p, v, __ATOMIC_SEQ_CST); }             \
  inline T atomicAnd(T* p, T v) { return __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST); }             \
  inline T atomicOr(T* p, T v) { return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); }               \
  inline T atomicXor(T* p, T v) { return __atomic_fetch_xor(p, v, __ATOMIC_SEQ_CST); }             \
  inline T atomicExch(T* p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }           \
  inline T atomicMax(T* p, T v) {                                                                  \
    return ::simt::atomic_update<T, T>(p, [v](T o) { return o > v ? o : v; });                     \
  }                                                                                                \
  inline T atomicMin(T* p, T v) {                                                                  \
    return ::simt::atomic_update<T, T>(p, [v](T o) { return o < v ? o : v; });                     \
  }                                                                                                \
  inline T atomicCAS(T* p, T expected, T desired) {                                                \
    __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); \
    return expected;                                                                               \
  }
SIMT_INT_ATOMICS(int)
SIMT_INT_ATOMICS(unsigned)
SIMT_INT_ATOMICS(long long)
SIMT_INT_ATOMICS(unsigned long long)
#undef SIMT_INT_ATOMICS
inline unsigned short atomicCAS(unsigned short* p, unsigned short expected, unsigned short desired) {
  __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return expected;
}
inline float atomicAdd(float* p, float v) {
  return ::simt::atomic_update<float, uint32_t>(p, [v](float o) { return o + v; });
}
inline double atomicAdd(double* p, double v) {
  return ::simt::atomic_update<double, uint64_t>(p, [v](double o) { return o + v; });
}
inline float atomicExch(float* p, float v) {
  return ::simt::atomic_update<float, uint32_t>(p, [v](float) { return v; });
}
inline __half atomicAdd(__half* p, __half v) {
  return ::simt::atomic_update<__half, uint16_t>(
      p, [v](__half o) { return __float2half_rn(__half2float(o) + __half2float(v)); });
}
inline __half2 atomicAdd(__half2* p, __half2 v) {  // per half atomic on the GPU; one 32-bit CAS here
  return ::simt::atomic_update<__half2, uint32_t>(p, [v](__half2 o) { return __hadd2(o, v); });
}
inline __nv_bfloat16 atomicAdd(__nv_bfloat16* p, __nv_bfloat16 v) {
  return ::simt::atomic_update<__nv_bfloat16, uint16_t>(
      p, [v](__nv_bfloat16 o) { return __float2bfloat16_rn(__bfloat162float(o) + __bfloat162float(v)); });
}

// ---- loads, bit and fast-math intrinsics ----
template <typename T>
inline T __ldg(const T* p) {
  return *p;
}
#define SIMT_LOAD(NAME)       \
  template <typename T>       \
  inline T NAME(const T* p) { \
    return *p;                \
  }
#define SIMT_STORE(NAME)        \
  template <typename T>         \
  inline void NAME(T* p, T v) { \
    *p = v;                     \
  }
// clang-format off
SIMT_LOAD(__ldca)
SIMT_LOAD(__ldcg)
SIMT_LOAD(__ldcs)
SIMT_LOAD(__ldlu)
SIMT_LOAD(__ldcv)
SIMT_STORE(__stwb)
SIMT_STORE(__stcg)
SIMT_STORE(__stcs)
SIMT_STORE(__stwt)
// clang-format on
#undef SIMT_LOAD
#undef SIMT_STORE
inline void __nanosleep(unsigned) {}
inline void __trap(SIMT_SITE) { ::simt::fail("__trap() called", file, line); }
// The reinterpreting casts: one bit copy, same size both sides.
namespace simt {
template <typename To, typename From>
inline To bits_as(From x) {
  static_assert(sizeof(To) == sizeof(From), "a bit cast keeps the size");
  To r;
  std::memcpy(&r, &x, sizeof r);
  return r;
}
}  // namespace simt
inline int __float_as_int(float x) { return ::simt::bits_as<int>(x); }
inline unsigned __float_as_uint(float x) { return ::simt::bits_as<unsigned>(x); }
inline float __int_as_float(int x) { return ::simt::bits_as<float>(x); }
inline float __uint_as_float(unsigned x) { return ::simt::bits_as<float>(x); }
inline long long __double_as_longlong(double x) { return ::simt::bits_as<long long>(x); }
inline double __longlong_as_double(long long x) { return ::simt::bits_as<double>(x); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
  return __builtin_bswap32(x);
}
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
// The approximate GPU intrinsics are computed exactly here: their real error is a GPU-only check.
inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return exp10f(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __log10f(float x) { return log10f(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __frsqrt_rn(float x) { return 1.0f / sqrtf(x); }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __saturatef(float x) { return x != x ? 0.0f : x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline int __float2int_rn(float x) { return (int)nearbyintf(x); }
inline int __float2int_rz(float x) { return (int)x; }
inline int __float2int_rd(float x) { return (int)floorf(x); }
inline int __float2int_ru(float x) { return (int)ceilf(x); }
inline float __int2float_rn(int x) { return (float)x; }
using std::isfinite;
using std::isinf;
using std::isnan;
using std::signbit;

// CUDA's min/max are overloaded for every arithmetic type pair in the global namespace.
template <typename A, typename B, typename = std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B>>>
inline std::common_type_t<A, B> max(A a, B b) {
  using C = std::common_type_t<A, B>;
  return (C)a < (C)b ? (C)b : (C)a;
}
template <typename A, typename B, typename = std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B>>>
inline std::common_type_t<A, B> min(A a, B b) {
  using C = std::common_type_t<A, B>;
  return (C)b < (C)a ? (C)b : (C)a;
}

// ---- half / bfloat16 math that the CUDA headers only declare for device code ----
// Computed in float and rounded once to the 16-bit type (round to nearest even).
#define SIMT_H16_MATH(H, TO, FROM)                                           \
  inline H __hfma(H a, H b, H c) { return FROM(fmaf(TO(a), TO(b), TO(c))); } \
  inline H hsqrt(H a) { return FROM(sqrtf(TO(a))); }                         \
  inline H hrsqrt(H a) { return FROM(1.0f / sqrtf(TO(a))); }                 \
  inline H hrcp(H a) { return FROM(1.0f / TO(a)); }                          \
  inline H hexp(H a) { return FROM(expf(TO(a))); }                           \
  inline H hexp2(H a) { return FROM(exp2f(TO(a))); }                         \
  inline H hlog(H a) { return FROM(logf(TO(a))); }                           \
  inline H hlog2(H a) { return FROM(log2f(TO(a))); }                         \
  inline H htanh(H a) { return FROM(tanhf(TO(a))); }                         \
  inline H hsin(H a) { return FROM(sinf(TO(a))); }                           \
  inline H hcos(H a) { return FROM(cosf(TO(a))); }
SIMT_H16_MATH(__half, __half2float, __float2half_rn)
SIMT_H16_MATH(__nv_bfloat16, __bfloat162float, __float2bfloat16_rn)
#undef SIMT_H16_MATH
#define SIMT_H16X2_MATH(H2, H)                                                                     \
  inline H2 __hfma2(H2 a, H2 b, H2 c) { return H2{__hfma(a.x, b.x, c.x), __hfma(a.y, b.y, c.y)}; } \
  inline H2 h2sqrt(H2 a) { return H2{hsqrt(a.x), hsqrt(a.y)}; }                                    \
  inline H2 h2exp(H2 a) { return H2{hexp(a.x), hexp(a.y)}; }                                       \
  inline H2 h2log(H2 a) { return H2{hlog(a.x), hlog(a.y)}; }                                       \
  inline H2 h2rcp(H2 a) { return H2{hrcp(a.x), hrcp(a.y)}; }
SIMT_H16X2_MATH(__half2, __half)
SIMT_H16X2_MATH(__nv_bfloat162, __nv_bfloat16)
#undef SIMT_H16X2_MATH
inline int __half2int_rn(__half h) { return (int)nearbyintf(__half2float(h)); }
inline int __half2int_rd(__half h) { return (int)floorf(__half2float(h)); }
inline int __half2int_ru(__half h) { return (int)ceilf(__half2float(h)); }

#undef SIMT_SITE
