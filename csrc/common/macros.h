#pragma once
// Shared by the CPU (.cpp) and CUDA (.cu) kernels: the same lines rank and draw on both,
// so bit-identity between backends holds by construction.
#if defined(__CUDACC__)
#define SMOOT_HD __host__ __device__ __forceinline__
#else
#define SMOOT_HD inline
#endif

// nvcc's loop unrolling hint; GCC does not know `#pragma unroll` and warns.
#if defined(__CUDACC__)
#define SMOOT_UNROLL _Pragma("unroll")
#else
#define SMOOT_UNROLL
#endif
