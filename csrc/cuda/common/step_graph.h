#pragma once
// Replays a fixed run of launches (e.g. an RNN's T step kernels) as one CUDA graph. The launches
// are captured on a private stream once per (device, stream, shape) and the instantiated graph is
// launched on the caller's stream (cupy's current one; the legacy default stream cannot be
// captured, but a graph can be launched on it). New pointers for a cached shape re-capture and
// update the instantiated graph in place (cudaGraphExecUpdate), re-instantiating if that fails.
// The caller's own capture is respected: launches then go straight to its stream.
// DEEPKERN_CUDA_GRAPHS=0 launches directly. Under the simulator the same code runs against the
// stand-in of csrc/simt/graphs.cpp (recorded launches, replayed in order).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "cuda/common/device.cuh"

namespace dk::cuda {

inline bool step_graphs_enabled() {
  const char* e = std::getenv("DEEPKERN_CUDA_GRAPHS");
  return !(e && !std::strcmp(e, "0"));
}

class StepGraphCache {
 public:
  // Runs body(s), which issues launches on the stream s it is given, as a graph on `stream`.
  // shape: what fixes the graph's topology; args: every pointer and value the launches take.
  template <typename Body>
  void run(const std::vector<int64_t>& shape, const std::vector<uintptr_t>& args, cudaStream_t stream, Body&& body) {
    cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
    check(cudaStreamIsCapturing(stream, &st), "cudaStreamIsCapturing");
    if (!step_graphs_enabled() || st != cudaStreamCaptureStatusNone) {
      body(stream);
      return;
    }
    int dev = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    std::lock_guard<std::mutex> lock(mu_);
    if (entries_.size() >= kMaxEntries) clear();
    Entry& e = entries_[Key{dev, reinterpret_cast<uintptr_t>(stream), shape}];
    if (!e.exec || e.args != args) {
      cudaGraph_t g = capture(dev, body);
      cudaGraphExecUpdateResultInfo info;
      if (e.exec && cudaGraphExecUpdate(e.exec, g, &info) != cudaSuccess) {
        cudaGetLastError();
        cudaGraphExecDestroy(e.exec);
        e.exec = nullptr;
      }
      if (!e.exec) {
        cudaError_t err = cudaGraphInstantiate(&e.exec, g, 0);
        if (err != cudaSuccess) e.exec = nullptr;
        cudaGraphDestroy(g);
        check(err, "cudaGraphInstantiate");
      } else {
        cudaGraphDestroy(g);
      }
      e.args = args;
    }
    check(cudaGraphLaunch(e.exec, stream), "cudaGraphLaunch");
  }

 private:
  static constexpr size_t kMaxEntries = 64;
  using Key = std::tuple<int, uintptr_t, std::vector<int64_t>>;
  struct Entry {
    cudaGraphExec_t exec = nullptr;
    std::vector<uintptr_t> args;
  };

  static void check(cudaError_t err, const char* what) {
    if (err != cudaSuccess) {
      cudaGetLastError();
      throw std::runtime_error(std::string("deepkern step graph: ") + what + " failed: " + cudaGetErrorString(err));
    }
  }

  template <typename Body>
  cudaGraph_t capture(int dev, Body& body) {
    cudaStream_t& s = capture_streams_[dev];
    if (!s) check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    check(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    cudaGraph_t g = nullptr;
    try {
      body(s);
    } catch (...) {
      cudaStreamEndCapture(s, &g);
      if (g) cudaGraphDestroy(g);
      cudaGetLastError();
      throw;
    }
    check(cudaStreamEndCapture(s, &g), "cudaStreamEndCapture");
    return g;
  }

  void clear() {
    for (auto& kv : entries_)
      if (kv.second.exec) cudaGraphExecDestroy(kv.second.exec);
    entries_.clear();
  }

  std::mutex mu_;
  std::map<Key, Entry> entries_;
  std::map<int, cudaStream_t> capture_streams_;
};

}  // namespace dk::cuda
