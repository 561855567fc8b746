#pragma once
// Pooling where the windows tile the input (window == stride, no padding, W a multiple of the 16-byte
// vector, kw dividing it): each thread owns V = 16/sizeof(T) consecutive input columns of one output row
// (V/kw outputs), reads and writes them as 16-byte vectors, and in the backward writes every element of
// its columns exactly once (argmax or share, zeros elsewhere, the rows below the last window included):
// no atomics, no zero-fill pass. Bandwidth-bound; floor and target in benchmarks/results/cuda_conv.md.
// Other geometries (overlap, padding, stride > window) take the gather kernels, which are also atomic-free.
#include "cuda/pooling/pool_common.cuh"

namespace dk::cuda::pool {

template <typename T>
struct alignas(16) Vec16 {
  static constexpr int V = 16 / sizeof(T);
  T v[V];
};

inline bool tiles_input(const Pool2dParams& p, size_t elem, const void* a, const void* b) {
  const int64_t V = int64_t(16 / elem);
  const bool kw_ok = p.kw == 1 || p.kw == 2 || p.kw == 4 || p.kw == 8;  // compiled window widths
  return p.kh == p.sh && p.kw == p.sw && p.ph == 0 && p.pw == 0 && kw_ok && V % p.kw == 0 && p.W % V == 0 &&
         (reinterpret_cast<uintptr_t>(a) & 15) == 0 && (reinterpret_cast<uintptr_t>(b) & 15) == 0;
}

// Work items: (plane, oh, column group of V inputs), column group fastest.
__device__ __forceinline__ void tiled_item(const Pool2dParams& p, int64_t t, int V, int64_t& plane, int64_t& oh,
                                           int64_t& col) {
  const int64_t groups = p.W / V;
  const int64_t g = t % groups, r = t / groups;
  oh = r % p.Ho;
  plane = r / p.Ho;
  col = g * V;
}

template <typename T, bool Max, int KW>
__global__ void tiled_fwd_kernel(Pool2dParams p, const T* __restrict__ x, T* __restrict__ y,
                                 int64_t* __restrict__ idx) {
  using A = typename Acc<T>::type;
  constexpr int V = Vec16<T>::V;
  constexpr int kw = KW, outs = V / KW;
  const int64_t total = p.planes() * p.Ho * (p.W / V);
  const A inv_area = A(1) / (A(p.kh) * A(p.kw));
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    int64_t plane, oh, col;
    tiled_item(p, t, V, plane, oh, col);
    A acc[outs];
    int64_t at[outs];
#pragma unroll
    for (int j = 0; j < outs; ++j) {
      acc[j] = Max ? A(-INFINITY) : A(0);
      at[j] = 0;
    }
    for (int64_t r = 0; r < p.kh; ++r) {
      const int64_t ih = oh * p.kh + r;
      const Vec16<T> in = *reinterpret_cast<const Vec16<T>*>(x + (plane * p.H + ih) * p.W + col);
#pragma unroll
      for (int j = 0; j < outs; ++j)
        for (int c = 0; c < kw; ++c) {
          const A v = to_acc(in.v[j * kw + c]);
          if (Max) {
            if ((r == 0 && c == 0) || v > acc[j] || isnan(v)) {  // PyTorch: NaN replaces the max, last NaN wins
              acc[j] = v;
              at[j] = ih * p.W + col + j * kw + c;
            }
          } else {
            acc[j] += v;
          }
        }
    }
    const int64_t o = (plane * p.Ho + oh) * p.Wo + col / kw;
#pragma unroll
    for (int j = 0; j < outs; ++j) {
      y[o + j] = from_acc<T>(Max ? acc[j] : acc[j] * inv_area);
      if (Max) idx[o + j] = at[j];
    }
  }
}

// The forward's grid-stride prologue again (the index math is tiled_item's); the bodies differ.
template <typename T, bool Max, int KW>
__global__ void tiled_bwd_kernel(Pool2dParams p, const T* __restrict__ dy, const int64_t* __restrict__ idx,
                                 T* __restrict__ dx) {
  using A = typename Acc<T>::type;
  constexpr int V = Vec16<T>::V;
  constexpr int kw = KW, outs = V / KW;
  const int64_t total = p.planes() * p.Ho * (p.W / V);
  const A inv_area = A(1) / (A(p.kh) * A(p.kw));
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    int64_t plane, oh, col;
    tiled_item(p, t, V, plane, oh, col);
    const int64_t o = (plane * p.Ho + oh) * p.Wo + col / kw;
    A g[outs];
    int64_t at[outs];
#pragma unroll
    for (int j = 0; j < outs; ++j) {
      g[j] = Max ? to_acc(dy[o + j]) : to_acc(dy[o + j]) * inv_area;
      at[j] = Max ? idx[o + j] : 0;
    }
    // the last output row also owns the input rows below the last window (H % kh of them): zeros
    const int64_t rows = oh == p.Ho - 1 ? p.H - oh * p.kh : p.kh;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t ih = oh * p.kh + r;
      Vec16<T> out;
#pragma unroll
      for (int j = 0; j < outs; ++j)
        for (int c = 0; c < kw; ++c) {
          const int64_t me = ih * p.W + col + j * kw + c;
          const bool mine = r < p.kh && (!Max || at[j] == me);
          out.v[j * kw + c] = from_acc<T>(mine ? g[j] : A(0));
        }
      *reinterpret_cast<Vec16<T>*>(dx + (plane * p.H + ih) * p.W + col) = out;
    }
  }
}

template <typename T, bool Max, bool Forward, int KW>
void launch_tiled_kw(const Pool2dParams& p, unsigned grid, cudaStream_t s, const void* in, void* out,
                     const int64_t* idx_in, int64_t* idx_out) {
  if constexpr (Vec16<T>::V % KW == 0) {
    if constexpr (Forward)
      launch(tiled_fwd_kernel<T, Max, KW>, grid, kThreads, 0, s, p, static_cast<const T*>(in), static_cast<T*>(out),
             idx_out);
    else
      launch(tiled_bwd_kernel<T, Max, KW>, grid, kThreads, 0, s, p, static_cast<const T*>(in), idx_in,
             static_cast<T*>(out));
  }
}

// Launches the tiled kernel when the geometry allows; returns false (nothing launched) otherwise.
template <typename T, bool Max, bool Forward>
bool tiled(const Pool2dParams& p, const void* in, void* out, const int64_t* idx_in, int64_t* idx_out, cudaStream_t s) {
  if (!tiles_input(p, sizeof(T), in, out)) return false;
  const unsigned grid = grid_for(p.planes() * p.Ho * (p.W / Vec16<T>::V), kThreads);
  switch (p.kw) {
    case 1: launch_tiled_kw<T, Max, Forward, 1>(p, grid, s, in, out, idx_in, idx_out); break;
    case 2: launch_tiled_kw<T, Max, Forward, 2>(p, grid, s, in, out, idx_in, idx_out); break;
    case 4: launch_tiled_kw<T, Max, Forward, 4>(p, grid, s, in, out, idx_in, idx_out); break;
    default: launch_tiled_kw<T, Max, Forward, 8>(p, grid, s, in, out, idx_in, idx_out); break;
  }
  return true;
}

}  // namespace dk::cuda::pool
