// The CUDA Graphs subset for the simulator (stream capture, instantiate, update, launch) and the
// occupancy query. A capture records each launch of the capturing OS thread (whatever its stream:
// the simulator has no streams) with copies of its arguments; a graph launch runs the recorded
// launches in order, to completion, on the calling thread. Other stream work during a capture
// (memset, memcpy) runs at once, not at replay: code that captures must launch kernels only.
#include <stdexcept>
#include <vector>

#include "simt/simt.h"

struct CUgraph_st {
  std::vector<std::function<void()>> nodes;
};
struct CUgraphExec_st {
  std::vector<std::function<void()>> nodes;
};
struct CUstream_st {
  int unused;
};

namespace simt {
namespace {
thread_local CUgraph_st* tls_capture = nullptr;
}
bool capturing() { return tls_capture != nullptr; }
void record_launch(std::function<void()> launch) { tls_capture->nodes.push_back(std::move(launch)); }
}  // namespace simt

extern "C" {

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int) {
  *s = new CUstream_st{0};
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode) {
  if (simt::tls_capture) return cudaErrorIllegalState;
  simt::tls_capture = new CUgraph_st;
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t* g) {
  if (!simt::tls_capture) return cudaErrorIllegalState;
  *g = simt::tls_capture;
  simt::tls_capture = nullptr;
  return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t, cudaStreamCaptureStatus* st) {
  *st = simt::tls_capture ? cudaStreamCaptureStatusActive : cudaStreamCaptureStatusNone;
  return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* e, cudaGraph_t g, unsigned long long) {
  *e = new CUgraphExec_st{g->nodes};
  return cudaSuccess;
}
// The real update succeeds only for the same topology with changed parameters; the stand-in
// replaces the nodes when their number matches and reports a topology change otherwise.
cudaError_t cudaGraphExecUpdate(cudaGraphExec_t e, cudaGraph_t g, cudaGraphExecUpdateResultInfo* info) {
  if (e->nodes.size() != g->nodes.size()) {
    if (info) info->result = cudaGraphExecUpdateErrorTopologyChanged;
    return cudaErrorGraphExecUpdateFailure;
  }
  e->nodes = g->nodes;
  if (info) info->result = cudaGraphExecUpdateSuccess;
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t) {
  for (auto& n : e->nodes) n();  // a failing launch throws simt::Error, as a direct launch does
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) {
  delete g;
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) {
  delete e;
  return cudaSuccess;
}

// Occupancy, from an H100-like SM (the simulator knows neither registers nor a kernel's static
// shared memory): 2048 threads, 32 blocks, 64K registers at an assumed 64 per thread, and 228 KiB
// of shared memory with 1 KiB reserved per block, of which the dynamic part counts here.
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* n, const void*, int block, size_t dyn) {
  if (block <= 0 || block > 1024) return cudaErrorInvalidValue;
  int by_threads = 2048 / block, by_regs = 65536 / (block * 64), by_smem = int((228 * 1024) / (dyn + 1024));
  int v = 32;
  for (int x : {by_threads, by_regs, by_smem})
    if (x < v) v = x;
  *n = v;
  return cudaSuccess;
}

}  // extern "C"
