"""Data-parallel training and RL sweeps over many processes: MPI (mpi4py) for numpy arrays,
NCCL (cupy.cuda.nccl, bootstrapped over MPI) for cupy arrays. Launch with `mpiexec -n N python
script.py` or Slurm's `srun python script.py`; see docs/DISTRIBUTED.md.

    from deepkern import distributed as dist
    dist.init()
    model.fit(x, y, loss, opt, epochs=5, batch_size=256, distributed=True)   # 256 = the global batch
"""

from ._runtime import abort, barrier, init, is_initialized, local_rank, rank, world_size
from .checkpoint import load_checkpoint, save_checkpoint
from .collectives import all_gather, all_reduce, broadcast
from .data_parallel import DataParallel, model_fingerprint, shard

__all__ = [
    "init",
    "is_initialized",
    "rank",
    "world_size",
    "local_rank",
    "barrier",
    "abort",
    "all_reduce",
    "broadcast",
    "all_gather",
    "DataParallel",
    "shard",
    "model_fingerprint",
    "save_checkpoint",
    "load_checkpoint",
]
