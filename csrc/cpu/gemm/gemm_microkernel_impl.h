// The register-blocked micro-kernel body shared by the SIMD ISAs. Included by gemm_avx2.cpp and
// gemm_avx512.cpp *inside their anonymous namespace*, with S = simd::Ops<T> (cpu/common/simd.h:
// T, V, W, load, store, bcast, set1, zero, fma, mul at the unit's vector width): every
// instantiation stays internal to its translation unit and is compiled with that unit's ISA
// flags, so none can leak into another path. No #includes here: the includer provides them.

// Shifted: B row k is Bp + offs[k] (a shifted-GEMM convolution reads the padded input
// directly); otherwise B is a packed panel, row k at Bp + k*NR. NV: SIMD vectors per tile row,
// 2 (NR = 2W columns) or 1 (the half tile, shifted only).
template <typename S, int MR, bool Shifted, int NV = 2>
void kernel_impl(int64_t kc, const typename S::T* __restrict Ap, const typename S::T* __restrict Bp,
                 const int64_t* __restrict offs, typename S::T* __restrict C, int64_t ldc, typename S::T alpha,
                 typename S::T beta) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int W = S::W, NR = 2 * W;
  V c0[MR], c1[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) c0[i] = c1[i] = S::zero();
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const typename S::T* b = Shifted ? Bp + offs[k] : Bp;
    const V b0 = S::load(b), b1 = NV == 2 ? S::load(b + W) : b0;
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V a = S::bcast(Ap + i);
      c0[i] = S::fma(a, b0, c0[i]);
      if (NV == 2) c1[i] = S::fma(a, b1, c1[i]);
    }
    Ap += MR;
    if (!Shifted) Bp += NR;
  }
  const V va = S::set1(alpha);
  if (beta == T(0)) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      S::store(C + i * ldc, S::mul(va, c0[i]));
      if (NV == 2) S::store(C + i * ldc + W, S::mul(va, c1[i]));
    }
  } else {
    const V vb = S::set1(beta);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      T* c = C + i * ldc;
      S::store(c, S::fma(va, c0[i], S::mul(vb, S::load(c))));
      if (NV == 2) S::store(c + W, S::fma(va, c1[i], S::mul(vb, S::load(c + W))));
    }
  }
}

template <typename S, int MR>
void kernel(int64_t kc, const typename S::T* Ap, const typename S::T* Bp, typename S::T* C, int64_t ldc,
            typename S::T alpha, typename S::T beta) {
  kernel_impl<S, MR, false>(kc, Ap, Bp, nullptr, C, ldc, alpha, beta);
}

template <typename S, int MR>
void kernel_shifted(int64_t kc, const typename S::T* Ap, const typename S::T* base, const int64_t* offs,
                    typename S::T* C, int64_t ldc, typename S::T alpha, typename S::T beta) {
  kernel_impl<S, MR, true>(kc, Ap, base, offs, C, ldc, alpha, beta);
}

template <typename S, int MR>
void kernel_shifted_half(int64_t kc, const typename S::T* Ap, const typename S::T* base, const int64_t* offs,
                         typename S::T* C, int64_t ldc, typename S::T alpha, typename S::T beta) {
  kernel_impl<S, MR, true, 1>(kc, Ap, base, offs, C, ldc, alpha, beta);
}

// A by row pointers: row i of the tile's A is Ar[i][0, kc) (an im2col row read in place from a
// convolution's input buffer), B a packed panel of NV*W columns, row k at Bp + k*NV*W. The weight
// gradient's transposed GEMM dwT = col * dy^T then needs no transposing pack of col (the large
// operand), only of dy. Ar must hold MR valid pointers (callers repeat a row for short panels).
template <typename S, int MR, int NV>
void kernel_rows(int64_t kc, const typename S::T* const* Ar, const typename S::T* __restrict Bp,
                 typename S::T* __restrict C, int64_t ldc, typename S::T alpha, typename S::T beta) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int W = S::W;
  const T* a[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) a[i] = Ar[i];
  V c0[MR], c1[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) c0[i] = c1[i] = S::zero();
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const V b0 = S::load(Bp), b1 = NV == 2 ? S::load(Bp + W) : b0;
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V av = S::bcast(a[i] + k);
      c0[i] = S::fma(av, b0, c0[i]);
      if (NV == 2) c1[i] = S::fma(av, b1, c1[i]);
    }
    Bp += NV * W;
  }
  const V va = S::set1(alpha), vb = S::set1(beta);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    T* c = C + i * ldc;
    S::store(c, beta == T(0) ? S::mul(va, c0[i]) : S::fma(va, c0[i], S::mul(vb, S::load(c))));
    if (NV == 2) S::store(c + W, beta == T(0) ? S::mul(va, c1[i]) : S::fma(va, c1[i], S::mul(vb, S::load(c + W))));
  }
}
