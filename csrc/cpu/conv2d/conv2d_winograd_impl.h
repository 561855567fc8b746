#pragma once
// Winograd F(4x4, 3x3) and F(2x2, 5x5) forward (conv2d_winograd.h), written once and compiled per ISA
// (conv2d_winograd_isa.h). Channels are the vector lanes: the input goes to a zero-padded
// channels-last buffer, so every transform is L-lane loops over channels (or output channels)
// that the compiler vectorises for the file's ISA, and the GEMMs read their rows in place:
//   U[xi] (Cp x Kp) = G g G^T,  V[xi] (tiles x Cp) = B^T d B,  M[xi] = V[xi] U[xi],  y = A^T M A.
// Cp, Kp: C, K rounded up to L with zeros. Work items: bands of tile rows of one sample.
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "common/conv_params.h"
#include "cpu/common/parallel.h"
#include "cpu/conv2d/conv2d_winograd.h"
#include "cpu/conv2d/conv2d_winograd_isa.h"
#include "cpu/gemm/gemm_kernels.h"

namespace dk::cpu::DK_WG_NS {

constexpr int L = 16;  // lanes of one transform step (channels)

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// A growable array, not std::vector<T>: a std:: template instantiated in an ISA-flagged
// translation unit is a weak symbol the linker may pick for every other user of the type,
// putting AVX-512 code on the portable path (tools/check_isa_objects.sh).
template <class T>
class Buf {
 public:
  Buf() = default;
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  ~Buf() { delete[] p_; }
  T* get(int64_t n) {  // at least n elements, contents unspecified
    if (n > n_) {
      delete[] p_;
      p_ = new T[size_t(n)];
      n_ = n;
    }
    return p_;
  }
  T* zeros(int64_t n) {
    T* p = get(n);
    std::memset(p, 0, sizeof(T) * size_t(n));
    return p;
  }
  T* data() const { return p_; }

 private:
  T* p_ = nullptr;
  int64_t n_ = 0;
};

// dst[j*ld + i] = src[i*ls + j] for an 8 x 8 block, in registers (3 rounds of two-source shuffles).
template <typename T>
inline void transpose8(const T* src, int64_t ls, T* dst, int64_t ld) {
  typedef T V __attribute__((vector_size(8 * sizeof(T))));
  V r[8], t[8], u[8];
  for (int i = 0; i < 8; ++i) std::memcpy(&r[i], src + i * ls, sizeof(V));
  for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int i = 0; i < 8; i += 4)
    for (int h = 0; h < 2; ++h) {
      u[i + 2 * h] = __builtin_shufflevector(t[i + h], t[i + h + 2], 0, 1, 8, 9, 4, 5, 12, 13);
      u[i + 2 * h + 1] = __builtin_shufflevector(t[i + h], t[i + h + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    }
  for (int j = 0; j < 4; ++j) {
    const V lo = __builtin_shufflevector(u[j], u[j + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    const V hi = __builtin_shufflevector(u[j], u[j + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    std::memcpy(dst + j * ld, &lo, sizeof(V));
    std::memcpy(dst + (j + 4) * ld, &hi, sizeof(V));
  }
}

// dst[j*ld + i] = src[i*ls + j] for i < rows, j < cols: 8 x 8 blocks in registers, the edges one by one.
template <typename T>
void transpose(const T* src, int64_t ls, int64_t rows, int64_t cols, T* dst, int64_t ld) {
  const int64_t r8 = rows / 8 * 8, c8 = cols / 8 * 8;
  for (int64_t i = 0; i < r8; i += 8) {
    for (int64_t j = 0; j < c8; j += 8) transpose8(src + i * ls + j, ls, dst + j * ld + i, ld);
    for (int64_t j = c8; j < cols; ++j)
      for (int64_t ii = i; ii < i + 8; ++ii) dst[j * ld + ii] = src[ii * ls + j];
  }
  for (int64_t i = r8; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dst[j * ld + i] = src[i * ls + j];
}

// transpose with the ragged edges as 8 x 8 blocks overlapping the last full ones (values rewritten,
// not changed) where the matrix has 8 rows or columns: planes are often 28 or 14 wide, whose edge
// columns one by one cost as much as the rest.
template <typename T>
void transpose_blocks(const T* src, int64_t ls, int64_t rows, int64_t cols, T* dst, int64_t ld) {
  if (rows < 8 || cols < 8) return transpose(src, ls, rows, cols, dst, ld);
  for (int64_t i0 = 0; i0 < rows; i0 += 8) {
    const int64_t i = std::min(i0, rows - 8);
    for (int64_t j0 = 0; j0 < cols; j0 += 8) {
      const int64_t j = std::min(j0, cols - 8);
      transpose8(src + i * ls + j, ls, dst + j * ld + i, ld);
    }
  }
}

// 1-D transforms on L lanes: element k of the input at in + k*si, element i of the output at out + i*so.
// Both tiles interpolate at the points a = 0, 1, -1, 2, -2 and infinity, so A = 6 inputs per tile and
// one data transform B^T (row k: the coefficients of M(x) / (x - a_k), M(x) = x (x^2 - 1)(x^2 - 4);
// the infinity row: M(x)). For F(m, r), m + r - 1 = 6, the filter transform G and the output
// transform A^T follow from the points (Toom-Cook): G[k][j] = a_k^j / N_k with N_k = prod over
// the other finite points b of (a_k - b), i.e. N = 4, -6, -6, 24, 24; A^T[i][k] = a_k^i; the
// infinity row of G picks g[r-1] and its column of A^T adds into y[m-1] only.
template <typename T>
struct DataTf {  // B^T d for the points above
  static constexpr int A = 6;
  static void data(const T* d, int64_t si, T* v, int64_t so) {
#pragma omp simd
    for (int l = 0; l < L; ++l) {
      const T d0 = d[l], d1 = d[si + l], d2 = d[2 * si + l], d3 = d[3 * si + l], d4 = d[4 * si + l], d5 = d[5 * si + l];
      const T a = d4 - T(4) * d2, b = d3 - T(4) * d1, c = d4 - d2, e = T(2) * (d3 - d1);
      v[l] = T(4) * d0 - T(5) * d2 + d4;
      v[so + l] = a + b;
      v[2 * so + l] = a - b;
      v[3 * so + l] = c + e;
      v[4 * so + l] = c - e;
      v[5 * so + l] = T(4) * d1 - T(5) * d3 + d5;
    }
  }
};

// Tf<T, M>: F(M x M, R x R), R = 7 - M: filter (G g, R -> 6) and output (A^T m, 6 -> M) transforms.
template <typename T, int M>
struct Tf;

template <typename T>
struct Tf<T, 4> : DataTf<T> {  // F(4, 3): 36 multiply-adds per 16 outputs and channel pair, not 144
  static constexpr int R = 3;
  static void filter(const T* g, int64_t si, T* u, int64_t so) {
#pragma omp simd
    for (int l = 0; l < L; ++l) {
      const T g0 = g[l], g1 = g[si + l], g2 = g[2 * si + l];
      const T s = g0 + g2, q = g0 / T(24) + g2 / T(6);
      u[l] = g0 / T(4);
      u[so + l] = -(s + g1) / T(6);
      u[2 * so + l] = -(s - g1) / T(6);
      u[3 * so + l] = q + g1 / T(12);
      u[4 * so + l] = q - g1 / T(12);
      u[5 * so + l] = g2;
    }
  }
  static void output(const T* m, int64_t si, T* o, int64_t so) {
#pragma omp simd
    for (int l = 0; l < L; ++l) {
      const T m1 = m[si + l], m2 = m[2 * si + l], m3 = m[3 * si + l], m4 = m[4 * si + l];
      const T s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
      o[l] = m[l] + s12 + s34;
      o[so + l] = d12 + T(2) * d34;
      o[2 * so + l] = s12 + T(4) * s34;
      o[3 * so + l] = d12 + T(8) * d34 + m[5 * si + l];
    }
  }
};

template <typename T>
struct Tf<T, 2> : DataTf<T> {  // F(2, 5): 36 multiply-adds per 4 outputs and channel pair, not 100
  static constexpr int R = 5;
  static void filter(const T* g, int64_t si, T* u, int64_t so) {
#pragma omp simd
    for (int l = 0; l < L; ++l) {
      const T g0 = g[l], g1 = g[si + l], g2 = g[2 * si + l], g3 = g[3 * si + l], g4 = g[4 * si + l];
      const T e1 = g0 + g2 + g4, o1 = g1 + g3;                               // at +-1
      const T e2 = g0 + T(4) * g2 + T(16) * g4, o2 = T(2) * g1 + T(8) * g3;  // at +-2
      u[l] = g0 / T(4);
      u[so + l] = -(e1 + o1) / T(6);
      u[2 * so + l] = -(e1 - o1) / T(6);
      u[3 * so + l] = (e2 + o2) / T(24);
      u[4 * so + l] = (e2 - o2) / T(24);
      u[5 * so + l] = g4;
    }
  }
  static void output(const T* m, int64_t si, T* o, int64_t so) {
#pragma omp simd
    for (int l = 0; l < L; ++l) {
      const T m1 = m[si + l], m2 = m[2 * si + l], m3 = m[3 * si + l], m4 = m[4 * si + l];
      o[l] = m[l] + (m1 + m2) + (m3 + m4);
      o[so + l] = (m1 - m2) + T(2) * (m3 - m4) + m[5 * si + l];
    }
  }
};

// The weight gradient's transforms (conv2d_winograd_dw_impl.h): G' (M -> 6) and A'^T (6 -> R) on L
// lanes: the Toom-Cook rule of Tf (G'[k][j] = a_k^j / N_k, A'^T[i][k] = a_k^i, infinity: the last tap
// / the last output) for r = M = 4 and m = R = 3.
template <typename T, int M>
struct DwTf;

template <typename T>
struct DwTf<T, 4> {  // 3x3: 4x4 dy blocks, 3x3 taps
  static void dy(const T* e, int64_t si, T* u, int64_t so) {
#pragma omp simd
    for (int l = 0; l < L; ++l) {
      const T e0 = e[l], e1 = e[si + l], e2 = e[2 * si + l], e3 = e[3 * si + l];
      const T ev1 = e0 + e2, od1 = e1 + e3, ev2 = e0 + T(4) * e2, od2 = T(2) * e1 + T(8) * e3;
      u[l] = e0 / T(4);
      u[so + l] = -(ev1 + od1) / T(6);
      u[2 * so + l] = -(ev1 - od1) / T(6);
      u[3 * so + l] = (ev2 + od2) / T(24);
      u[4 * so + l] = (ev2 - od2) / T(24);
      u[5 * so + l] = e3;
    }
  }
  static void out(const T* m, int64_t si, T* o, int64_t so) {
#pragma omp simd
    for (int l = 0; l < L; ++l) {
      const T m1 = m[si + l], m2 = m[2 * si + l], m3 = m[3 * si + l], m4 = m[4 * si + l];
      const T s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
      o[l] = m[l] + s12 + s34;
      o[so + l] = d12 + T(2) * d34;
      o[2 * so + l] = s12 + T(4) * s34 + m[5 * si + l];
    }
  }
};

template <typename T, int M>
struct Winograd {
  static constexpr int A = Tf<T, M>::A, R = Tf<T, M>::R;
  const Conv2dParams& p;
  int64_t Cp, Kp, th_n, tw_n, wp, rows_t, bands;
  const GemmKernel<T>& kr;
  Buf<T> U;     // [A*A][panels][Cp][width]: packed B panels of the micro-kernel (panel(), width())
  Buf<T> bias;  // [Kp], zeros past K (or all zeros)

  // The tiling only; prepare() adds the forward's transformed weights and bias.
  explicit Winograd(const Conv2dParams& p_) : p(p_), kr(gemm_kernel<T>()) {
    Cp = round_up(p.C, L);
    // L at a time; the last panel of the GEMM may be the micro-kernel's half width (nr <= 2L)
    Kp = round_up(p.K, std::max<int64_t>(L, kr.nr / 2));
    th_n = (p.Ho + M - 1) / M;
    tw_n = (p.Wo + M - 1) / M;
    wp = tw_n * M + R - 1;
    set_rows(winograd_band_rows(th_n, tw_n));
  }

  void prepare(const T* w, const T* b) {
    transform_weights(w);
    T* bp = bias.zeros(Kp);
    for (int64_t k = 0; b && k < p.K; ++k) bp[k] = b[k];
  }

  void set_rows(int64_t r) {
    rows_t = std::clamp<int64_t>(r, 1, th_n);
    bands = (th_n + rows_t - 1) / rows_t;
  }

  // U from w, per call: each channel's taps gathered k fastest, transformed L output channels at a
  // time, and stored L at a time into the micro-kernel's panels (nr a multiple of L, or L of nr).
  void transform_weights(const T* w) {
    const int64_t K = p.K, C = p.C;
    Buf<T> wt_buf;
    T* wt = wt_buf.zeros(R * R * Kp);  // one channel's taps, k fastest
    T* u_all = U.zeros(A * A * Cp * Kp);
    T t[A * R * L], u[A * A * L];
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t k = 0; k < K; ++k)
        for (int r = 0; r < R * R; ++r) wt[r * Kp + k] = w[(k * C + c) * R * R + r];
      for (int64_t k0 = 0; k0 < Kp; k0 += L) {
        for (int j = 0; j < R; ++j) Tf<T, M>::filter(wt + j * Kp + k0, R * Kp, t + j * L, R * L);
        for (int i = 0; i < A; ++i) Tf<T, M>::filter(t + i * R * L, L, u + i * A * L, L);
        for (int xi = 0; xi < A * A; ++xi)
          for (int64_t l = 0; l < L; l += std::min<int64_t>(L, kr.nr)) {
            const int64_t k = k0 + l, j = k / kr.nr;
            std::memcpy(u_all + panel(xi, j) + c * width(j) + k % kr.nr, u + xi * L + l,
                        sizeof(T) * size_t(std::min<int64_t>(L, kr.nr)));
          }
      }
    }
  }

  // Panel j of U[xi] (Cp x width(j), row-major) and its width: nr, or nr / 2 for a last, half panel.
  int64_t width(int64_t j) const { return std::min<int64_t>(kr.nr, Kp - j * kr.nr); }
  int64_t panel(int xi, int64_t j) const { return (xi * Kp + j * kr.nr) * Cp; }

  struct Scratch {
    Buf<T> xt, V, Mx, ob;
  };

  // v[xi][L] to L / P whole panels of P lanes each: panel q of xi at dst + xi * sx + q * sp.
  template <int P>
  static void to_panels(const T* v, T* dst, int64_t sp, int64_t sx) {
    for (int xi = 0; xi < A * A; ++xi)
      for (int q = 0; q < L / P; ++q) std::memcpy(dst + xi * sx + q * sp, v + xi * L + q * P, sizeof(T) * P);
  }

  // One line between the A*A matrices of an item, so that their rows do not all map to the same
  // cache sets: V[xi] at xi * ld(Cp), M[xi] at xi * ld(Kp).
  int64_t ld(int64_t tiles, int64_t width) const { return tiles * width + L; }

  // V of the item (tile rows [r0, r1) of the C channels from xn on, planes H*W apart: one sample, or
  // one group of a sample) into s.V, through the channels-last band s.xt.
  // mr = 0: V[xi] is tiles x Cp at xi * ld(tiles, Cp) (the forward's GEMM reads its rows in place);
  // mr > 0: V[xi]^T as packed micro-kernel A panels (mr channels by tiles each; Cz = Cp rounded up
  // to mr, the rows past Cp zero) at xi * ld(tiles, Cz), for the weight gradient's GEMM.
  // (bi, bj): read x that many rows and columns further on (the weight gradient's shifted blocks).
  void input_transform(const T* xn, int64_t r0, int64_t r1, Scratch& s, int mr = 0, int bi = 0, int bj = 0) const {
    const int64_t C = p.C, H = p.H, W = p.W;
    const int64_t hb = (r1 - r0) * M + R - 1, tiles = (r1 - r0) * tw_n;
    const int64_t Cz = mr ? round_up(Cp, mr) : Cp, sv = ld(tiles, Cz);
    s.xt.zeros(hb * wp * Cp);
    if (Cz > Cp)
      s.V.zeros(A * A * sv);
    else
      s.V.get(A * A * sv);
    // channels-last, zero-padded rows of the band
    for (int64_t r = 0; r < hb; ++r) {
      const int64_t h = r0 * M + r - p.ph + bi;
      if (h < 0 || h >= H) continue;
      // shifted past the padding: the copy starts inside the row
      const int64_t w0 = std::max<int64_t>(0, bj - p.pw), d0 = std::max<int64_t>(0, p.pw - bj);
      const int64_t wn = std::min(W - w0, wp - d0);
      if (wn > 0) transpose(xn + h * W + w0, H * W, C, wn, s.xt.data() + (r * wp + d0) * Cp, Cp);
    }
    // input transform
    T t[A * A * L], v[A * A * L];
    for (int64_t tr = 0; tr < r1 - r0; ++tr)
      for (int64_t tw = 0; tw < tw_n; ++tw) {
        const int64_t tile = tr * tw_n + tw;
        const T* org = s.xt.data() + (tr * M * wp + tw * M) * Cp;
        for (int64_t c0 = 0; c0 < Cp; c0 += L) {
          for (int j = 0; j < A; ++j) Tf<T, M>::data(org + j * Cp + c0, wp * Cp, t + j * L, A * L);
          if (mr == 0) {
            T* vt = s.V.data() + tile * Cp + c0;
            for (int i = 0; i < A; ++i) Tf<T, M>::data(t + i * A * L, L, vt + i * A * sv, sv);
            continue;
          }
          for (int i = 0; i < A; ++i) Tf<T, M>::data(t + i * A * L, L, v + i * A * L, L);
          if (mr == 8) {
            to_panels<8>(v, s.V.data() + (c0 / 8 * tiles + tile) * 8, tiles * 8, sv);
            continue;
          }
          for (int64_t c = c0; c < c0 + L;) {  // runs of lanes within one panel
            const int64_t run = std::min<int64_t>(c0 + L, (c / mr + 1) * mr) - c;
            T* dst = s.V.data() + (c / mr * tiles + tile) * mr + c % mr;
            for (int xi = 0; xi < A * A; ++xi)
              std::memcpy(dst + xi * sv, v + xi * L + (c - c0), sizeof(T) * size_t(run));
            c += run;
          }
        }
      }
  }

  // Forward item: sample n, tile rows [r0, r1).
  void run_item(int64_t n, int64_t r0, int64_t r1, const T* x, T* y, Scratch& s) const {
    const int64_t K = p.K, tiles = (r1 - r0) * tw_n, wt_ = tw_n * M;
    const int64_t sv = ld(tiles, Cp), sm = ld(tiles, Kp);
    input_transform(x + n * p.C * p.H * p.W, r0, r1, s);
    s.Mx.get(A * A * sm);
    s.ob.get((r1 - r0) * M * wt_ * Kp);
    // M[xi] = V[xi] U[xi]: MR tiles x NR output channels per micro-kernel call, V's rows read in
    // place, U packed once per call. Tiles past the last (up to MR - 1) read the last tile's row.
    const int mr = kr.mr, nr = kr.nr;
    const T* rows[kMaxPanel];
    T* mx = s.Mx.data();
    for (int xi = 0; xi < A * A; ++xi)
      for (int64_t j = 0; j * nr < Kp; ++j) {
        const T* up = U.data() + panel(xi, j);
        const int64_t wj = width(j);
        const auto fn = wj == nr ? kr.fn_rows : kr.fn_rows_half;
        for (int64_t i0 = 0; i0 < tiles; i0 += mr) {
          for (int i = 0; i < mr; ++i) rows[i] = s.V.data() + xi * sv + std::min(i0 + i, tiles - 1) * Cp;
          if (i0 + mr <= tiles) {
            fn(Cp, rows, up, mx + xi * sm + i0 * Kp + j * nr, Kp, T(1), T(0));
          } else {
            T tmp[kMaxPanel * kMaxPanel];
            fn(Cp, rows, up, tmp, wj, T(1), T(0));
            for (int64_t i = 0; i < tiles - i0; ++i)
              std::memcpy(mx + xi * sm + (i0 + i) * Kp + j * nr, tmp + i * wj, sizeof(T) * size_t(wj));
          }
        }
      }
    // output transform into channels-last rows, then to y
    T o[M * A * L], q[M * M * L];
    for (int64_t tr = 0; tr < r1 - r0; ++tr)
      for (int64_t tw = 0; tw < tw_n; ++tw) {
        const int64_t tile = tr * tw_n + tw;
        T* dst = s.ob.data() + (tr * M * wt_ + tw * M) * Kp;
        for (int64_t k0 = 0; k0 < Kp; k0 += L) {
          const T* m = s.Mx.data() + tile * Kp + k0;
          for (int j = 0; j < A; ++j) Tf<T, M>::output(m + j * sm, A * sm, o + j * L, A * L);
          for (int i = 0; i < M; ++i) Tf<T, M>::output(o + i * A * L, L, q + i * M * L, L);
          const T* bk = bias.data() + k0;
          for (int i = 0; i < M * M; ++i)
#pragma omp simd
            for (int l = 0; l < L; ++l) q[i * L + l] += bk[l];
          for (int i = 0; i < M; ++i)
            for (int j = 0; j < M; ++j) std::memcpy(dst + (i * wt_ + j) * Kp + k0, q + (i * M + j) * L, sizeof(T) * L);
        }
      }
    const int64_t oh0 = r0 * M, oh1 = std::min(p.Ho, r1 * M);
    // 8 output planes at a time: planes are often a multiple of 4 KiB apart, and stores to many
    // of them at once would compete for the same L1 sets
    for (int64_t k0 = 0; k0 < K; k0 += 8)
      for (int64_t oh = oh0; oh < oh1; ++oh)
        transpose(s.ob.data() + (oh - oh0) * wt_ * Kp + k0, Kp, p.Wo, std::min<int64_t>(8, K - k0),
                  y + (n * K + k0) * p.Ho * p.Wo + oh * p.Wo, p.Ho * p.Wo);
  }
};

template <typename T, int M>
void forward_m(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y) {
  const int nt = num_threads();
  const bool threads = nt > 1 && threads_for_flops(2.0 * double(p.N * p.K) * double(p.out_plane() * p.crs())) > 1;
  Winograd<T, M> wg(p);
  wg.prepare(w, b);
  if (threads && p.N * wg.bands < nt) wg.set_rows((wg.th_n * p.N + nt - 1) / nt);
  const int64_t items = p.N * wg.bands;
  static thread_local typename Winograd<T, M>::Scratch scratch;
#pragma omp parallel for schedule(dynamic) num_threads(team(nt)) if (threads && items > 1)
  for (int64_t it = 0; it < items; ++it) {
    const int64_t n = it / wg.bands, r0 = it % wg.bands * wg.rows_t;
    wg.run_item(n, r0, std::min(wg.th_n, r0 + wg.rows_t), x, y, scratch);
  }
}

template <typename T>
void forward(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y) {
  if (p.kh == 5)
    forward_m<T, 2>(p, x, w, b, y);
  else
    forward_m<T, 4>(p, x, w, b, y);
}

}  // namespace dk::cpu::DK_WG_NS
