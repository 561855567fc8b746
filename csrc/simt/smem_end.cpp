// Last object linked into deepkern._cuda_sim: closes the simt_smem section (see smem_begin.cpp).
namespace simt {
thread_local unsigned char simt_smem_end[16] __attribute__((section("simt_smem"), aligned(16)));
}
