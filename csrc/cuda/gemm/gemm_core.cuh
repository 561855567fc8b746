#pragma once
// The one GEMM mainloop behind every GEMM-shaped CUDA kernel in deepkern (conv2d forward, dgrad,
// wgrad; plain GEMMs, see gemm_plain.cuh): C[M, N] = sum_k A(m, k) * B(k, n), handed to an epilogue.
//
// Policies (template parameters of gemm_kernel):
//   Math      the tile, the math unit and the shared-memory layout it reads: SimtMath (exact FFMA /
//             DFMA, per-thread TMxTN register tile) or MmaMath (mma.sync m16n8k16 f16 or m16n8k8 tf32,
//             ldmatrix fragments, warp tile 64x32). It also says how many pipeline stages to use.
//   OpA, OpB  where the operands come from. A is read as rows m, B as rows n, both along k:
//               struct Op {
//                 using T = element type in global memory;
//                 struct Row { ... };                       // per-row precomputation, once per block
//                 __device__ Row row(int64_t r) const;        // called only for r < rows
//                 __device__ T load(const Row&, int64_t k) const;  // 0 in padding; k < K guaranteed
//                 __device__ const T* chunk(int64_t r, int64_t k) const;  // async operands only: the
//               };                                          // 16 contiguous bytes holding (r, k..)
//             Staging is register-gathered (load -> registers during the math on the previous stage ->
//             shared) unless the kernel's AsyncA/AsyncB says cp.async 16-byte copies (only with MmaMath,
//             whose k-contiguous layout they land in; the launcher checks alignment and K % vector).
//   Epi       __device__ void operator()(int64_t m, int64_t n, Acc v) const, called once per (m < M, n < N).
// Split-K: gridDim.z > 1 makes each z-slice cover its own k-tiles and store raw partial sums into
// ws[z][M][N]; splitk_reduce then sums the slices in z order (deterministic) and calls Epi.
// Groups (grouped convolution): G independent GEMMs of the same shape in one launch, gridDim.z =
// G * splits, slice z on group z / splits. An OpA/OpB/Epi with `Op group(int g) const` is shifted to
// group g's data by it (one pointer offset per block); one without it (the plain GEMMs) is ungrouped.
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "cuda/common/cp_async.cuh"
#include "cuda/common/device.cuh"
#include "cuda/common/launch.h"
#include "cuda/common/mma.cuh"
#include "cuda/common/numeric.cuh"

namespace dk::cuda::gemm {

__device__ __forceinline__ float madd(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ double madd(double a, double b, double c) { return fma(a, b, c); }
__device__ __forceinline__ float bits_float(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

struct GemmShape {
  int64_t M, N, K;
  int64_t k_tiles_per_split;  // k-tiles each gridDim.z slice covers
  int splits;                 // gridDim.z = groups * splits
};

template <class Op, class = void>
struct HasGroup : std::false_type {};
template <class Op>
struct HasGroup<Op, std::void_t<decltype(std::declval<const Op&>().group(0))>> : std::true_type {};

// An epilogue may declare `static constexpr bool kNoSplitK = true` (conv forward and dgrad): its GEMMs
// never split k, so a grouped block's group is blockIdx.z itself (no division, nothing extra held in
// registers across the mainloop) and run() never splits them.
template <class Epi, class = void>
struct NoSplitK : std::false_type {};
template <class Epi>
struct NoSplitK<Epi, std::enable_if_t<Epi::kNoSplitK>> : std::true_type {};

// The group of this block of a grouped launch (gridDim.z = groups * splits).
template <class Epi>
__device__ __forceinline__ int group_of_block(int splits) {
  if constexpr (NoSplitK<Epi>::value)
    return int(blockIdx.z);
  else
    return int(blockIdx.z) / splits;
}

// The view of group g: a shifted copy, or a reference to the op itself when it is ungrouped (so the
// ungrouped instances read their kernel parameters exactly as without groups).
template <class Op>
__device__ __forceinline__ decltype(auto) in_group(const Op& op, int g) {
  if constexpr (HasGroup<Op>::value)
    return op.group(g);
  else
    return (op);
}

// ------------------------------------------------------------------ exact math (FFMA / DFMA)
// Block tile BM x BN x BK; thread (ty, tx) owns rows {ty*TM/2 + i, BM/2 + ty*TM/2 + i} and the same
// pattern of columns, so its shared reads are TM/2-wide vectors that a warp reads without conflicts.
// Shared layout k-major per operand ([BK][BM], [BK][BN]): the row-fast gather stores are consecutive.
template <typename T, int BM_, int BN_, int BK_, int TM, int TN>
struct SimtMath {
  using Elem = T;
  using S = T;
  using Acc = typename dk::cuda::Acc<T>::type;
  static constexpr int BM = BM_, BN = BN_, BK = BK_;
  static constexpr int kThreads = (BM / TM) * (BN / TN);
  // __launch_bounds__ minimum blocks per SM: float32 2 (<= 128 registers, 16 warps per SM); float64 3
  // (its 4x4 tile fits in 80 registers; a looser cap only lets ptxas spend more and lose a block)
  static constexpr int min_blocks(bool /*async*/) { return sizeof(T) == 8 ? 3 : 2; }
  static constexpr int kStages = 2;
  static constexpr bool kKMajor = false;
  static constexpr int kAStage = BK * BM, kBStage = BK * BN;
  static constexpr int kColThreads = BN / TN;

  __device__ static int a_at(int r, int k) { return k * BM + r; }
  __device__ static int b_at(int r, int k) { return k * BN + r; }
  __device__ static S cvt(T v) { return v; }

  struct Frag {
    Acc c[TM][TN];
  };
  __device__ static void zero(Frag& f) {
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) f.c[i][j] = Acc(0);
  }
  __device__ static int row_of(int i) {
    const int ty = threadIdx.x / kColThreads;
    return i < TM / 2 ? ty * (TM / 2) + i : BM / 2 + ty * (TM / 2) + (i - TM / 2);
  }
  __device__ static int col_of(int j) {
    const int tx = threadIdx.x % kColThreads;
    return j < TN / 2 ? tx * (TN / 2) + j : BN / 2 + tx * (TN / 2) + (j - TN / 2);
  }

  // Reads V consecutive elements from shared memory, as one 16-byte access where V*sizeof(S) == 16.
  template <int V>
  __device__ static void lds(S (&dst)[V], const S* p) {
    if constexpr (V * sizeof(S) == 16) {
      const int4 v = *reinterpret_cast<const int4*>(p);
      memcpy(dst, &v, 16);
    } else {
#pragma unroll
      for (int i = 0; i < V; ++i) dst[i] = p[i];
    }
  }

  __device__ static void compute(const S* sA, const S* sB, Frag& f) {
    const int ty = threadIdx.x / kColThreads, tx = threadIdx.x % kColThreads;
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      S a[TM], b[TN];
      S a0[TM / 2], a1[TM / 2], b0[TN / 2], b1[TN / 2];
      lds<TM / 2>(a0, sA + k * BM + ty * (TM / 2));
      lds<TM / 2>(a1, sA + k * BM + BM / 2 + ty * (TM / 2));
      lds<TN / 2>(b0, sB + k * BN + tx * (TN / 2));
      lds<TN / 2>(b1, sB + k * BN + BN / 2 + tx * (TN / 2));
#pragma unroll
      for (int i = 0; i < TM / 2; ++i) {
        a[i] = a0[i];
        a[TM / 2 + i] = a1[i];
      }
#pragma unroll
      for (int j = 0; j < TN / 2; ++j) {
        b[j] = b0[j];
        b[TN / 2 + j] = b1[j];
      }
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) f.c[i][j] = madd(to_acc(a[i]), to_acc(b[j]), f.c[i][j]);
    }
  }

  template <typename Fn>
  __device__ static void for_each(const Frag& f, Fn&& fn) {
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) fn(row_of(i), col_of(j), f.c[i][j]);
  }
};

// ------------------------------------------------------------------ tensor cores (mma.sync)
// 128x128 block tile, 8 warps as 2 (m) x 4 (n), warp tile 64x32 = 4 x 4 mma tiles, float accumulators.
// BK is 64 bytes of k (32 halves / 16 floats) per stage; shared rows are padded by 16 bytes (80-byte
// stride) so the 8 row addresses of each ldmatrix phase fall in distinct bank groups; 4 stages.
// T = __half: m16n8k16 f16. T = float: m16n8k8 tf32 (fragments rounded with cvt.rna after ldmatrix,
// so cp.async may land raw float32 bits in shared memory).
template <typename T>
struct MmaMath {
  using Elem = T;
  using S = T;
  using Acc = float;
  static constexpr bool kTf32 = sizeof(T) == 4;
  static constexpr int BM = 128, BN = 128, BK = 64 / sizeof(T);
  static constexpr int kThreads = 256;
  // Minimum blocks per SM: 2 (<= 128 registers; 160 of the 228 KiB shared memory) except for float16
  // with both operands gathered, which needs ~160 registers (capped at 128 it spills): 1.
  static constexpr int min_blocks(bool async) { return (kTf32 || async) ? 2 : 1; }
  static constexpr int kStages = 4;
  static constexpr bool kKMajor = true;
  static constexpr int kLds = BK + 16 / sizeof(T);
  static constexpr int kAStage = BM * kLds, kBStage = BN * kLds;
  static constexpr int WM = 64, WN = 32, MI = WM / 16, NI = WN / 8;
  static constexpr int KS = kTf32 ? 8 : 16;  // mma k

  __device__ static int a_at(int r, int k) { return r * kLds + k; }
  __device__ static int b_at(int r, int k) { return r * kLds + k; }
  __device__ static S cvt(T v) {
    if constexpr (kTf32)
      return bits_float(to_tf32(v));
    else
      return v;
  }

  struct Frag {
    float c[MI][NI][4];
  };
  __device__ static void zero(Frag& f) {
#pragma unroll
    for (int mi = 0; mi < MI; ++mi)
#pragma unroll
      for (int ni = 0; ni < NI; ++ni)
#pragma unroll
        for (int i = 0; i < 4; ++i) f.c[mi][ni][i] = 0.0f;
  }

  __device__ static void compute(const S* sA, const S* sB, Frag& f) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int wm = warp / (BN / WN), wn = warp % (BN / WN);
#pragma unroll
    for (int kk = 0; kk < BK; kk += KS) {
      uint32_t a[MI][4], b[NI][2];
#pragma unroll
      for (int mi = 0; mi < MI; ++mi)
        ldmatrix_x4(a[mi], sA + a_at(wm * WM + mi * 16 + (lane & 15), kk + (lane >> 4) * (KS / 2)));
#pragma unroll
      for (int nj = 0; nj < NI / 2; ++nj) {
        uint32_t r[4];
        ldmatrix_x4(r,
                    sB + b_at(wn * WN + nj * 16 + (lane & 7) + ((lane >> 4) << 3), kk + ((lane >> 3) & 1) * (KS / 2)));
        b[2 * nj][0] = r[0];
        b[2 * nj][1] = r[1];
        b[2 * nj + 1][0] = r[2];
        b[2 * nj + 1][1] = r[3];
      }
      if constexpr (kTf32) {
#pragma unroll
        for (int mi = 0; mi < MI; ++mi)
#pragma unroll
          for (int i = 0; i < 4; ++i) a[mi][i] = to_tf32(bits_float(a[mi][i]));
#pragma unroll
        for (int ni = 0; ni < NI; ++ni)
#pragma unroll
          for (int i = 0; i < 2; ++i) b[ni][i] = to_tf32(bits_float(b[ni][i]));
      }
#pragma unroll
      for (int mi = 0; mi < MI; ++mi)
#pragma unroll
        for (int ni = 0; ni < NI; ++ni) {
          float d[4];
          if constexpr (kTf32)
            mma_m16n8k8_tf32(d, a[mi], b[ni], f.c[mi][ni]);
          else
            mma_m16n8k16_f16(d, a[mi], b[ni], f.c[mi][ni]);
#pragma unroll
          for (int i = 0; i < 4; ++i) f.c[mi][ni][i] = d[i];
        }
    }
  }

  template <typename Fn>
  __device__ static void for_each(const Frag& f, Fn&& fn) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int wm = warp / (BN / WN), wn = warp % (BN / WN);
#pragma unroll
    for (int mi = 0; mi < MI; ++mi)
#pragma unroll
      for (int ni = 0; ni < NI; ++ni)
#pragma unroll
        for (int i = 0; i < 4; ++i)
          fn(wm * WM + mi * 16 + (lane >> 2) + 8 * (i >> 1), wn * WN + ni * 8 + 2 * (lane & 3) + (i & 1),
             f.c[mi][ni][i]);
  }
};

// ------------------------------------------------------------------ staging
// Register-gathered operand tile: thread t owns row t % ROWS of the tile and k = t / ROWS + i * (threads / ROWS),
// so one Row precomputation serves every k-tile, and a warp's loads walk consecutive rows (the
// contiguous direction of NCHW activations).
template <class Math, class Op, int ROWS, bool IsA>
struct Gather {
  static constexpr int kStep = Math::kThreads / ROWS;
  static constexpr int kElems = ROWS * Math::BK / Math::kThreads;
  static_assert(Math::kThreads % ROWS == 0 && kElems >= 1, "row-fast gather needs threads % rows == 0");
  typename Op::Row row{};
  bool valid;
  int r, k0;
  typename Math::S reg[kElems];

  __device__ Gather(const Op& op, int64_t base, int64_t rows) {
    r = threadIdx.x % ROWS;
    k0 = threadIdx.x / ROWS;
    valid = base + r < rows;
    if (valid) row = op.row(base + r);
  }
  __device__ void load(const Op& op, int64_t kt, int64_t K) {
#pragma unroll
    for (int i = 0; i < kElems; ++i) {
      const int64_t k = kt * Math::BK + k0 + i * kStep;
      typename Op::T v = typename Op::T(0);
      if (valid && k < K) v = op.load(row, k);
      reg[i] = Math::cvt(v);
    }
  }
  __device__ void store(typename Math::S* s) const {
#pragma unroll
    for (int i = 0; i < kElems; ++i) s[IsA ? Math::a_at(r, k0 + i * kStep) : Math::b_at(r, k0 + i * kStep)] = reg[i];
  }
};

// cp.async operand tile (k-contiguous shared layout): 16-byte chunks, k fastest across threads.
template <class Math, class Op, int ROWS, bool IsA>
struct AsyncCopy {
  static constexpr int kVec = 16 / sizeof(typename Math::S);
  static constexpr int kChunksPerRow = Math::BK / kVec;
  static constexpr int kChunks = ROWS * kChunksPerRow;
  static_assert(Math::kKMajor, "cp.async staging needs the k-contiguous (MmaMath) layout");
  static_assert(kChunks % Math::kThreads == 0, "chunks must divide among threads");
  int64_t base, rows;
  __device__ AsyncCopy(const Op&, int64_t b, int64_t n) : base(b), rows(n) {}
  __device__ void issue(const Op& op, typename Math::S* s, int64_t kt, int64_t K) const {
#pragma unroll
    for (int i = 0; i < kChunks / Math::kThreads; ++i) {
      const int c = threadIdx.x + i * Math::kThreads;
      const int r = c / kChunksPerRow, kc = (c % kChunksPerRow) * kVec;
      const int64_t gk = kt * Math::BK + kc;
      const bool pred = base + r < rows && gk < K;
      const void* src =
          pred ? static_cast<const void*>(op.chunk(base + r, gk)) : static_cast<const void*>(op.chunk(base, 0));
      cp_async_16(s + (IsA ? Math::a_at(r, kc) : Math::b_at(r, kc)), src, pred);
    }
  }
};

template <class Math, class Op, int ROWS, bool IsA, bool Async>
struct Stager;

template <class Math, class Op, int ROWS, bool IsA>
struct Stager<Math, Op, ROWS, IsA, false> {
  Gather<Math, Op, ROWS, IsA> g;
  __device__ Stager(const Op& op, int64_t base, int64_t rows) : g(op, base, rows) {}
  __device__ void start(const Op& op, typename Math::S*, int64_t kt, int64_t K) { g.load(op, kt, K); }
  __device__ void finish(typename Math::S* s) { g.store(s); }
};

template <class Math, class Op, int ROWS, bool IsA>
struct Stager<Math, Op, ROWS, IsA, true> {
  AsyncCopy<Math, Op, ROWS, IsA> c;
  __device__ Stager(const Op& op, int64_t base, int64_t rows) : c(op, base, rows) {}
  __device__ void start(const Op& op, typename Math::S* s, int64_t kt, int64_t K) { c.issue(op, s, kt, K); }
  __device__ void finish(typename Math::S*) {}
};

template <class Math>
constexpr size_t smem_bytes() {
  return size_t(Math::kStages) * (Math::kAStage + Math::kBStage) * sizeof(typename Math::S);
}

// ------------------------------------------------------------------ the kernel
// Pipeline over kStages shared buffers: at step kt the tile kt + kStages - 1 is started (cp.async issued,
// or gathered into registers) before the math on tile kt and finished (registers -> shared) after it;
// one commit group per step keeps cp_async_wait<kStages - 2> pointing at tile kt.
template <class Math, class OpA, class OpB, class Epi, bool AsyncA, bool AsyncB>
__global__ void __launch_bounds__(Math::kThreads, Math::min_blocks(AsyncA || AsyncB))
    gemm_kernel(GemmShape sh, OpA a_all, OpB b_all, Epi epi_all, typename Math::Acc* ws) {
  using S = typename Math::S;
  // Ungrouped instances (the plain GEMMs) compile to the code without groups; grouped ones shift the
  // epilogue only after the mainloop, so its pointers are not held in registers across it.
  constexpr bool kGrouped = HasGroup<OpA>::value || HasGroup<OpB>::value || HasGroup<Epi>::value;
  const int group = kGrouped ? group_of_block<Epi>(sh.splits) : 0;
  const int split = kGrouped ? int(blockIdx.z) - group * sh.splits : int(blockIdx.z);
  const auto& a = in_group(a_all, group);
  const auto& b = in_group(b_all, group);
  constexpr int ST = Math::kStages;
  DK_DYNAMIC_SHARED(S, smem);
  S* sA = smem;
  S* sB = smem + ST * Math::kAStage;

  const int64_t m0 = int64_t(blockIdx.x) * Math::BM, n0 = int64_t(blockIdx.y) * Math::BN;
  const int64_t k_tiles = (sh.K + Math::BK - 1) / Math::BK;
  const int64_t kt0 = int64_t(split) * sh.k_tiles_per_split;
  const int64_t kt1 = k_tiles < kt0 + sh.k_tiles_per_split ? k_tiles : kt0 + sh.k_tiles_per_split;

  Stager<Math, OpA, Math::BM, true, AsyncA> stA(a, m0, sh.M);
  Stager<Math, OpB, Math::BN, false, AsyncB> stB(b, n0, sh.N);
  typename Math::Frag acc;
  Math::zero(acc);

#pragma unroll 1
  for (int s = 0; s < ST - 1; ++s) {
    if (kt0 + s < kt1) {
      stA.start(a, sA + s * Math::kAStage, kt0 + s, sh.K);
      stB.start(b, sB + s * Math::kBStage, kt0 + s, sh.K);
      stA.finish(sA + s * Math::kAStage);
      stB.finish(sB + s * Math::kBStage);
    }
    cp_async_commit();
  }

#pragma unroll 1
  for (int64_t kt = kt0; kt < kt1; ++kt) {
    cp_async_wait<ST - 2>();
    __syncthreads();
    const int64_t next = kt + ST - 1;
    const int ns = int((next - kt0) % ST), cs = int((kt - kt0) % ST);
    const bool has_next = next < kt1;
    if (has_next) {
      stA.start(a, sA + ns * Math::kAStage, next, sh.K);
      stB.start(b, sB + ns * Math::kBStage, next, sh.K);
    }
    Math::compute(sA + cs * Math::kAStage, sB + cs * Math::kBStage, acc);
    if (has_next) {
      stA.finish(sA + ns * Math::kAStage);
      stB.finish(sB + ns * Math::kBStage);
    }
    cp_async_commit();
  }
  cp_async_wait<0>();

  const bool to_ws = kGrouped ? sh.splits > 1 : gridDim.z > 1;
  const auto& epi = in_group(epi_all, kGrouped ? group_of_block<Epi>(sh.splits) : 0);
  typename Math::Acc* slab = ws + int64_t(blockIdx.z) * sh.M * sh.N;
  Math::for_each(acc, [&](int r, int c, typename Math::Acc v) {
    const int64_t m = m0 + r, n = n0 + c;
    if (m < sh.M && n < sh.N) {
      if (to_ws)
        slab[m * sh.N + n] = v;
      else
        epi(m, n, v);
    }
  });
}

// Sums the split-K slices of each group in z order and hands each (m, n) to the group's epilogue.
template <class AccT, class Epi>
__global__ void splitk_reduce(int64_t M, int64_t N, int splits, int groups, const AccT* __restrict__ ws, Epi epi) {
  const int64_t total = M * N;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total * groups;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t g = i / total, e = i - g * total;
    const AccT* src = ws + g * splits * total + e;
    AccT s = src[0];
    for (int z = 1; z < splits; ++z) s += src[int64_t(z) * total];
    in_group(epi, int(g))(e / N, e % N, s);
  }
}

// Split count for a problem: enough blocks for two waves on 132 SMs, each split at least 16 k-tiles.
inline int split_count(int64_t tiles, int64_t k_tiles) {
  if (tiles <= 0 || k_tiles < 32) return 1;
  int64_t s = (264 + tiles - 1) / tiles;
  s = s < k_tiles / 16 ? s : k_tiles / 16;
  if (s > 32) s = 32;
  return s < 1 ? 1 : int(s);
}

}  // namespace dk::cuda::gemm

namespace dk::cuda::gemm {

// Host side: launches one GEMM per group, all in one grid (and their split-K reduction when splits > 1;
// ws then holds groups * splits * M * N accumulators). Nothing is launched for an empty output.
template <class Math, class OpA, class OpB, class Epi, bool AsyncA, bool AsyncB>
void run(int64_t M, int64_t N, int64_t K, const OpA& a, const OpB& b, const Epi& epi, typename Math::Acc* ws,
         int splits, cudaStream_t stream, int64_t groups = 1) {
  if (M <= 0 || N <= 0 || groups <= 0) return;
  const int64_t k_tiles = (K + Math::BK - 1) / Math::BK;
  if (ws == nullptr || k_tiles < 2 || NoSplitK<Epi>::value) splits = 1;
  int64_t per = splits > 1 ? (k_tiles + splits - 1) / splits : k_tiles;
  if (per < 1) per = 1;
  if (splits > 1) splits = int((k_tiles + per - 1) / per);
  const int64_t gx = (M + Math::BM - 1) / Math::BM, gy = (N + Math::BN - 1) / Math::BN;
  if (gx > 2147483647LL || gy > 65535 || groups * splits > 65535)
    throw std::invalid_argument("deepkern gemm: problem too large for one launch (M " + std::to_string(M) + ", N " +
                                std::to_string(N) + ", groups " + std::to_string(groups) + ")");
  GemmShape sh{M, N, K, per, splits};
  auto kernel = gemm_kernel<Math, OpA, OpB, Epi, AsyncA, AsyncB>;
  constexpr size_t smem = smem_bytes<Math>();
  if (smem > 48 * 1024) set_max_dynamic_shared(kernel, smem);
  launch(kernel, dim3(unsigned(gx), unsigned(gy), unsigned(groups * splits)), dim3(Math::kThreads), smem, stream, sh, a,
         b, epi, ws);
  if (splits > 1)
    launch(splitk_reduce<typename Math::Acc, Epi>, dim3(grid_for(M * N * groups, 256)), dim3(256), 0, stream, M, N,
           splits, int(groups), static_cast<const typename Math::Acc*>(ws), epi);
}

// The configurations every GEMM user instantiates: exact float32 / float64 and the tensor-core ones.
// float32 128x128x8 with 8x8 per thread (256 threads): 64 FFMA per 4 shared 16-byte reads per k;
// float64 64x64x8 with 4x4 per thread keeps the double accumulators in registers without spills.
using SimtF32 = SimtMath<float, 128, 128, 8, 8, 8>;
using SimtF64 = SimtMath<double, 64, 64, 8, 4, 4>;
using MmaF16 = MmaMath<__half>;
using MmaTf32 = MmaMath<float>;

}  // namespace dk::cuda::gemm
