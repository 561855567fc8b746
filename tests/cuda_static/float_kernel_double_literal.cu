// Fixture: a float kernel with a stray double literal; the build's ptxas flags must reject it
// unless the file is one of the float64 translation units (*_f64.cu). (0.5 would not do: the
// compiler folds an exact double product back to float.)
__global__ void tenth(float* x) { x[threadIdx.x] *= 0.1; }
