// The phase-buffer row copies (conv2d_phase_rows.h) compiled for avx2.
#include "cpu/conv2d/conv2d_phase_rows_impl.h"
