// The warp collectives' semantics: each resolve_* gets the posted op of every lane named in
// mask (nullptr elsewhere) once all have arrived, and writes each lane's result. Shuffles follow
// the PTX ISA's shfl.sync definition (segments of `width` lanes); reading a lane outside the
// mask is undefined on a GPU and gives all-one bits (NaN, -1) here.
#include "simt/internal.h"

namespace simt {

namespace {

enum class Shfl { Idx, Up, Down, Bfly };

void shuffle(WarpOp** ops, unsigned mask, Shfl mode) {
  uint64_t in[32];
  for (int l = 0; l < 32; ++l)
    if (ops[l]) in[l] = ops[l]->value;
  for (int lane = 0; lane < 32; ++lane) {
    WarpOp* op = ops[lane];
    if (!op) continue;
    const int seg = (32 - op->width) & 0x1f;  // c[12:8] of the PTX instruction
    const int min_lane = lane & seg;
    const int max_lane = mode == Shfl::Up ? min_lane : min_lane | (0x1f & ~seg);
    const int b = op->arg;
    int j = lane;
    bool ok = false;
    switch (mode) {
      case Shfl::Up:
        j = lane - b;
        ok = j >= max_lane;
        break;
      case Shfl::Down:
        j = lane + b;
        ok = j <= max_lane;
        break;
      case Shfl::Bfly:
        j = lane ^ (b & 0x1f);
        ok = j <= max_lane;
        break;
      case Shfl::Idx:
        j = min_lane | (b & 0x1f & ~seg);
        ok = j <= max_lane;
        break;
    }
    if (!ok) j = lane;
    op->result = (mask >> j & 1) ? in[j] : ~uint64_t(0);
  }
}

template <typename F>
void reduce(WarpOp** ops, F f) {
  bool first = true;
  uint32_t acc = 0;
  for (int l = 0; l < 32; ++l)
    if (ops[l]) acc = first ? uint32_t(ops[l]->value) : f(acc, uint32_t(ops[l]->value)), first = false;
  for (int l = 0; l < 32; ++l)
    if (ops[l]) ops[l]->result = acc;
}

}  // namespace

void resolve_shfl_idx(WarpOp** ops, unsigned mask) { shuffle(ops, mask, Shfl::Idx); }
void resolve_shfl_up(WarpOp** ops, unsigned mask) { shuffle(ops, mask, Shfl::Up); }
void resolve_shfl_down(WarpOp** ops, unsigned mask) { shuffle(ops, mask, Shfl::Down); }
void resolve_shfl_xor(WarpOp** ops, unsigned mask) { shuffle(ops, mask, Shfl::Bfly); }
void resolve_syncwarp(WarpOp**, unsigned) {}

void resolve_ballot(WarpOp** ops, unsigned) {
  uint64_t bits = 0;
  for (int l = 0; l < 32; ++l)
    if (ops[l] && ops[l]->value) bits |= 1u << l;
  for (int l = 0; l < 32; ++l)
    if (ops[l]) ops[l]->result = bits;
}

void resolve_reduce_add(WarpOp** ops, unsigned) {
  reduce(ops, [](uint32_t a, uint32_t b) { return a + b; });
}
void resolve_reduce_and(WarpOp** ops, unsigned) {
  reduce(ops, [](uint32_t a, uint32_t b) { return a & b; });
}
void resolve_reduce_or(WarpOp** ops, unsigned) {
  reduce(ops, [](uint32_t a, uint32_t b) { return a | b; });
}
void resolve_reduce_xor(WarpOp** ops, unsigned) {
  reduce(ops, [](uint32_t a, uint32_t b) { return a ^ b; });
}
void resolve_reduce_min_u(WarpOp** ops, unsigned) {
  reduce(ops, [](uint32_t a, uint32_t b) { return a < b ? a : b; });
}
void resolve_reduce_max_u(WarpOp** ops, unsigned) {
  reduce(ops, [](uint32_t a, uint32_t b) { return a > b ? a : b; });
}
void resolve_reduce_min_s(WarpOp** ops, unsigned) {
  reduce(ops, [](uint32_t a, uint32_t b) { return int32_t(a) < int32_t(b) ? a : b; });
}
void resolve_reduce_max_s(WarpOp** ops, unsigned) {
  reduce(ops, [](uint32_t a, uint32_t b) { return int32_t(a) > int32_t(b) ? a : b; });
}

}  // namespace simt
