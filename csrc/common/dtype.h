#pragma once
// Element types the kernels understand. The Python layer passes the code; the bindings
// and launchers switch on it once and call the typed kernel.
#include <cstdint>

namespace dk {

enum class DType : int32_t { Float32 = 0, Float64 = 1, Float16 = 2, BFloat16 = 3 };

}  // namespace dk
