#pragma once
// Marks small helpers in common/ structs callable from both host and device code.
#ifdef __CUDACC__
#define DK_HOST_DEVICE __host__ __device__
#else
#define DK_HOST_DEVICE
#endif
