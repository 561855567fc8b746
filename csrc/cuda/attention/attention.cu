// The attention translation unit (float32 and float16): nvcc compiles it into deepkern._cuda,
// g++ with the SIMT simulator into deepkern._cuda_sim. float64 is in attention_f64.cu.
#include "cuda/attention/attention_entry.cuh"
