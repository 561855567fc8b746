#pragma once
// CUDA LSTM launchers, as the bindings see them (plain C++: the bindings are not compiled by
// nvcc). Pointers are device pointers, nullptr for absent optional arrays; the Python layer
// allocates every output and workspace. Arrays of the element type dt unless marked "acc":
// those are float for float16/float32 and double for float64.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/dtype.h"
#include "common/lstm_params.h"

namespace dk::cuda {

// Forward over a (T, B, I) sequence (a cell is T = 1), as the CPU's lstm_forward: y (T, B, H),
// hT, cT (B, H); gates (T, B, 4H) activations, xh (T, B, I+H) and cs (T+1, B, H) when a context
// is kept (all three or none). Workspaces: proj (T*B, 4H) acc, always; cbuf (2, B, H) when cs
// is nullptr.
void lstm_forward(const LstmParams& p, DType dt, const void* x, const void* h0, const void* c0, const void* w_ih,
                  const void* w_hh, const void* b_ih, const void* b_hh, void* y, void* hT, void* cT, void* gates,
                  void* xh, void* cs, void* proj, void* cbuf, uintptr_t stream);

// Backward through time from the forward's gates, xh, cs. dy, dhT, dcT may be nullptr (zeros);
// dh0, dc0, db are written where not nullptr. Workspaces: dgates (T*B, 4H), dcbuf (2, B, H) acc.
void lstm_backward(const LstmParams& p, DType dt, const void* xh, const void* w_ih, const void* w_hh, const void* gates,
                   const void* cs, const void* dy, const void* dhT, const void* dcT, void* dx, void* dh0, void* dc0,
                   void* dw_ih, void* dw_hh, void* db, void* dgates, void* dcbuf, uintptr_t stream);

// The recurrence a call with these shapes would run, and why: the persistent kernel's fit
// (lstm_persistent_plan.h) and the choice after DEEPKERN_LSTM_PERSISTENT (std::runtime_error
// where =1 forces a kernel that does not fit). float64 has no persistent kernel.
struct LstmPathInfo {
  bool persistent = false;  // the choice
  bool fits = false;
  unsigned blocks = 0;
  int blocks_per_sm = 0, sms = 0;
  size_t smem = 0;
  std::string why;
};
LstmPathInfo lstm_path(const LstmParams& p, DType dt, bool backward);

}  // namespace dk::cuda
