// First object linked into deepkern._cuda_sim: opens the simt_smem section, where every static
// __shared__ variable lives (see simt.h). Its per-OS-thread copy runs from simt_smem_begin to
// the end of simt_smem_end (smem_end.cpp, linked last); scheduler.cpp checks that against the
// linker's __start/__stop_simt_smem and fills it with 0xFF at every block start. The two markers
// are also canaries: a write that lands on them is reported.
namespace simt {
thread_local unsigned char simt_smem_begin[16] __attribute__((section("simt_smem"), aligned(16)));
}
