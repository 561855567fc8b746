// Softmax cross-entropy (softmax_xent.h): rows in fixed blocks across threads, float32 on the
// per-ISA rows (softmax_xent_impl.h), float64 on the same rows with libm's exp (gradient checks).
#include "cpu/loss/softmax_xent.h"

#include <algorithm>
#include <vector>

#include "cpu/common/parallel.h"
#include "cpu/loss/softmax_xent_impl.h"

namespace dk::cpu {

namespace {

template <typename T>
SoftmaxXentRows<T> rows_kernel();

template <>
SoftmaxXentRows<float> rows_kernel<float>() {
  static const SoftmaxXentRows<float> k = DK_ISA_PICK(SoftmaxXentRows<float>, loss::softmax_xent_rows_f32);
  return k;
}

template <>
SoftmaxXentRows<double> rows_kernel<double>() {
  return &isa_generic::loss::xent_rows<double>;
}

constexpr int64_t kBlockElems = int64_t(1) << 14;  // logits per block of rows

}  // namespace

template <typename T>
double softmax_xent(const T* z, const int64_t* labels, int64_t n, int64_t C, int64_t n_total, T* probs, T* grad) {
  if (n <= 0 || C <= 0) return 0.0;
  const SoftmaxXentRows<T> rows = rows_kernel<T>();
  const int64_t per = std::max<int64_t>(1, kBlockElems / C), blocks = (n + per - 1) / per;
  // Each block's loss sums in its own slot, added in block order: the total does not depend on
  // which thread ran which block.
  std::vector<double> part(size_t(blocks), 0.0);
  const T nt = T(n_total);
#pragma omp parallel for schedule(static) num_threads(team(threads_for_bytes(3.0 * sizeof(T) * double(n * C))))
  for (int64_t b = 0; b < blocks; ++b)
    part[size_t(b)] = rows(z, labels, b * per, std::min(n, (b + 1) * per), C, nt, probs, grad);
  double loss = 0.0;
  for (double v : part) loss += v;
  return loss;
}

template double softmax_xent<float>(const float*, const int64_t*, int64_t, int64_t, int64_t, float*, float*);
template double softmax_xent<double>(const double*, const int64_t*, int64_t, int64_t, int64_t, double*, double*);

}  // namespace dk::cpu
