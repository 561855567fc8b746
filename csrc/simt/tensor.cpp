// Tensor-core and async-copy emulation for cuda/common/mma.cuh and cp_async.cuh. mma and
// ldmatrix are warp collectives over the PTX ISA fragment layouts (g = lane>>2, t = lane&3);
// products are summed in double and rounded once to float (the GPU's internal rounding differs
// slightly: a GPU-only check). cp.async copies land at the cp_async_wait that completes their group.
#include <cmath>

#include "simt/internal.h"

namespace simt {

namespace {

constexpr unsigned kFull = 0xffffffffu;

float half_bits(uint32_t h) { return __half2float(__ushort_as_half((unsigned short)h)); }
float bf16_bits(uint32_t h) { return __uint_as_float(h << 16); }
float tf32_bits(uint32_t x) { return __uint_as_float(x & 0xffffe000u); }  // the unit reads 19 bits

struct MmaIn {
  const uint32_t* a;
  const uint32_t* b;
  const float* c;
};

// D = A (16 x K) * B (K x 8) + C from the 32 lanes' fragments.
template <int K, typename ElemA, typename ElemB>
void mma(WarpOp** ops, ElemA elem_a, ElemB elem_b) {
  double A[16][16], B[16][8], C[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    const auto* in = static_cast<const MmaIn*>(ops[lane]->in);
    const int g = lane >> 2, t = lane & 3;
    for (int i = 0; i < 4; ++i) {
      elem_a(A, in->a, i, g, t);
      C[g + 8 * (i >> 1)][2 * t + (i & 1)] = in->c[i];
    }
    for (int i = 0; i < 2; ++i) elem_b(B, in->b, i, g, t);
  }
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, t = lane & 3;
    auto* d = static_cast<float*>(ops[lane]->out);
    for (int i = 0; i < 4; ++i) {
      const int row = g + 8 * (i >> 1), col = 2 * t + (i & 1);
      double s = C[row][col];
      for (int k = 0; k < K; ++k) s += A[row][k] * B[k][col];
      d[i] = (float)s;
    }
  }
}

template <float (*Elem)(uint32_t)>
void resolve_mma_16816(WarpOp** ops, unsigned) {
  mma<16>(
      ops,
      [](double (*A)[16], const uint32_t* a, int r, int g, int t) {  // reg r: row g+8(r&1), cols 2t+8(r>>1)+{0,1}
        A[g + 8 * (r & 1)][2 * t + 8 * (r >> 1)] = Elem(a[r] & 0xffff);
        A[g + 8 * (r & 1)][2 * t + 8 * (r >> 1) + 1] = Elem(a[r] >> 16);
      },
      [](double (*B)[8], const uint32_t* b, int r, int g, int t) {  // reg r: rows 2t+8r+{0,1}, col g
        B[2 * t + 8 * r][g] = Elem(b[r] & 0xffff);
        B[2 * t + 8 * r + 1][g] = Elem(b[r] >> 16);
      });
}

void resolve_mma_1688_tf32(WarpOp** ops, unsigned) {
  mma<8>(
      ops,
      [](double (*A)[16], const uint32_t* a, int r, int g, int t) {
        A[g + 8 * (r & 1)][t + 4 * (r >> 1)] = tf32_bits(a[r]);
      },
      [](double (*B)[8], const uint32_t* b, int r, int g, int t) { B[t + 4 * r][g] = tf32_bits(b[r]); });
}

void post_mma(Resolve r, const char* what, float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4],
              const char* file, int line) {
  MmaIn in{a, b, c};
  float out[4];  // d may alias c: write it only after every lane's inputs were read
  WarpOp op{r, kFull, 0, 32, 0, 0, &in, out};
  warp_collective(op, what, file, line);
  for (int i = 0; i < 4; ++i) d[i] = out[i];
}

// ldmatrix .xNUM: lanes 8j..8j+7 give the row addresses of 8x8 b16 matrix j; lane L receives
// row L/4, elements 2(L%4) and +1 of each matrix (transposed: column L/4, rows 2(L%4) and +1).
template <int NUM, bool TRANS>
void resolve_ldmatrix(WarpOp** ops, unsigned) {
  uint16_t M[NUM][8][8];
  for (int j = 0; j < NUM; ++j)
    for (int q = 0; q < 8; ++q) std::memcpy(M[j][q], ops[8 * j + q]->in, 16);
  for (int lane = 0; lane < 32; ++lane) {
    auto* r = static_cast<uint32_t*>(ops[lane]->out);
    const int row = lane / 4, col = 2 * (lane % 4);
    for (int j = 0; j < NUM; ++j) {
      const uint16_t lo = TRANS ? M[j][col][row] : M[j][row][col];
      const uint16_t hi = TRANS ? M[j][col + 1][row] : M[j][row][col + 1];
      r[j] = lo | (uint32_t)hi << 16;
    }
  }
}

std::string hex(const void* p) {
  char s[32];
  std::snprintf(s, sizeof s, "%p", p);
  return s;
}

}  // namespace

void mma_m16n8k16(MmaType t, float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4], const char* file,
                  int line) {
  if (t == MmaType::F16)
    post_mma(resolve_mma_16816<half_bits>, "mma_m16n8k16_f16", d, a, b, c, file, line);
  else
    post_mma(resolve_mma_16816<bf16_bits>, "mma_m16n8k16_bf16", d, a, b, c, file, line);
}

void mma_m16n8k8_tf32(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4], const char* file,
                      int line) {
  post_mma(resolve_mma_1688_tf32, "mma_m16n8k8_tf32", d, a, b, c, file, line);
}

uint32_t to_tf32(float x) {  // cvt.rna.tf32.f32: nearest, ties away from zero
  uint32_t u = __float_as_uint(x);
  if (!std::isfinite(x)) return u;
  return (u + 0x1000u) & 0xffffe000u;
}

void ldmatrix(uint32_t* r, int num, bool trans, const void* row, const char* file, int line) {
  static const Resolve table[2][3] = {
      {resolve_ldmatrix<1, false>, resolve_ldmatrix<2, false>, resolve_ldmatrix<4, false>},
      {resolve_ldmatrix<1, true>, resolve_ldmatrix<2, true>, resolve_ldmatrix<4, true>}};
  const int lane = worker().current->lane;
  if (lane < 8 * num) {  // only these lanes' addresses are read
    if (reinterpret_cast<uintptr_t>(row) % 16)
      fail("ldmatrix: row address " + hex(row) + " is not 16-byte aligned", file, line);
    if (!in_shared(row, 16))
      fail("ldmatrix: row address " + hex(row) + " is not in this block's shared memory", file, line);
  }
  uint32_t out[4];
  WarpOp op{table[trans][num == 1 ? 0 : num == 2 ? 1 : 2], kFull, num, 32, 0, 0, row, out};
  warp_collective(op, trans ? "ldmatrix_trans" : "ldmatrix", file, line);
  for (int j = 0; j < num; ++j) r[j] = out[j];
}

void cp_async(void* smem, const void* gmem, int bytes, bool pred, const char* file, int line) {
  if (reinterpret_cast<uintptr_t>(smem) % bytes || (pred && reinterpret_cast<uintptr_t>(gmem) % bytes))
    fail("cp_async_" + std::to_string(bytes) + ": addresses " + hex(smem) + " <- " + hex(gmem) + " are not " +
             std::to_string(bytes) + "-byte aligned",
         file, line);
  if (!in_shared(smem, bytes))
    fail("cp_async: destination " + hex(smem) + " is not in this block's shared memory", file, line);
  if (pred && in_shared(gmem, bytes))
    fail("cp_async: source " + hex(gmem) + " is in shared memory, not global", file, line);
  worker().current->uncommitted.push_back(Copy{smem, gmem, bytes, pred});
}

void cp_async_commit() {
  Thread* t = worker().current;
  t->in_flight.push_back(std::move(t->uncommitted));
  t->uncommitted.clear();
}

void cp_async_wait(int n, const char*, int) {
  Thread* t = worker().current;
  while ((int)t->in_flight.size() > n) {
    for (const Copy& c : t->in_flight.front()) {
      if (c.pred)
        std::memcpy(c.dst, c.src, c.bytes);
      else
        std::memset(c.dst, 0, c.bytes);
    }
    t->in_flight.erase(t->in_flight.begin());
  }
}

}  // namespace simt
