"""The process group: init() from an MPI launch (mpiexec / srun), rank, world size, local rank,
barrier, and the hook that takes the whole job down when one rank raises."""

import os
import sys
import traceback

_STATE = {"comm": None, "rank": 0, "size": 1, "local_rank": 0, "local_size": 1, "nccl": None, "hook": None}

# Variables a launcher sets to the number of processes it started (MPICH/Intel MPI's hydra,
# Open MPI, PMIx, and Slurm's srun; SLURM_NTASKS alone is set in a batch script outside srun too).
_LAUNCH_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "SLURM_STEP_NUM_TASKS", "MPI_LOCALNRANKS")
_INSTALL_HINT = 'pip install "deepkern[mpi]" (mpi4py and the mpich runtime)'


def _launch_size():
    """(variable, size) of the first launcher variable set in the environment, else (None, None)."""
    for var in _LAUNCH_SIZE_VARS[:-1]:
        v = os.environ.get(var)
        if v and v.isdigit():
            return var, int(v)
    return None, None


def _import_mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        var, n = _launch_size()
        where = f" (this process was launched as one of {n}: {var}={n})" if n else ""
        raise ImportError(
            f"deepkern.distributed needs mpi4py and an MPI runtime{where}; {_INSTALL_HINT}. Import failed with: {e}"
        ) from None
    return MPI


def init(abort_on_error=True):
    """Join the job started by `mpiexec -n N python ...` or Slurm's `srun python ...` (every rank
    calls it; a plain `python ...` is a job of one). Safe to call twice. Returns world_size().

    Raises ImportError when mpi4py is missing and RuntimeError when the launcher started N
    processes but MPI sees a different number (e.g. srun without a working PMI, or a python run
    by an mpiexec of another MPI than mpi4py's). With abort_on_error (the default, for N > 1) an
    uncaught exception on any rank prints that rank and its traceback and calls MPI Abort, so the
    other ranks do not wait for it forever inside a collective. Where cupy sees GPUs, the current
    device becomes GPU (local_rank() mod the GPUs visible)."""
    if _STATE["comm"] is not None:
        return _STATE["size"]
    MPI = _import_mpi()
    comm = MPI.COMM_WORLD
    size, rank = comm.Get_size(), comm.Get_rank()
    var, n = _launch_size()
    if n is not None and n != size:
        raise RuntimeError(
            f"deepkern.distributed.init: the launcher started {n} processes ({var}={n}) but MPI sees a world of "
            f"{size}: this python's mpi4py is not talking to that launcher. Launch with the mpiexec of the MPI "
            f"mpi4py was built for (python -c 'import mpi4py.MPI as M; print(M.Get_library_version())'), or under "
            f"Slurm with srun --mpi=pmi2 / --mpi=pmix (srun --mpi=list shows what the site offers)."
        )
    local = comm.Split_type(MPI.COMM_TYPE_SHARED, key=rank)
    _STATE.update(comm=comm, rank=rank, size=size, local_rank=local.Get_rank(), local_size=local.Get_size())
    local.Free()
    _use_local_gpu()
    if abort_on_error and size > 1:
        _install_abort_hook()
    return size


def _use_local_gpu():
    """Where cupy sees GPUs, make GPU (local rank mod count) current, so the arrays a rank creates
    after init() are on the GPU its NCCL communicator drives."""
    import importlib.util

    if importlib.util.find_spec("cupy") is None:
        return
    try:
        import cupy

        n = cupy.cuda.runtime.getDeviceCount()
    except Exception:  # cupy without a driver: numpy-only ranks
        return
    if n > 0:
        cupy.cuda.Device(_STATE["local_rank"] % n).use()


def is_initialized():
    return _STATE["comm"] is not None


def _comm():
    if _STATE["comm"] is None:
        raise RuntimeError("deepkern.distributed: call deepkern.distributed.init() first (on every rank)")
    return _STATE["comm"]


def rank():
    """This process's rank in [0, world_size()); 0 before init()."""
    return _STATE["rank"]


def world_size():
    """The number of processes in the job; 1 before init()."""
    return _STATE["size"]


def local_rank():
    """This process's index among the ranks on its node (the GPU it uses)."""
    return _STATE["local_rank"]


def barrier():
    """Wait until every rank has reached this call."""
    _comm().Barrier()


def _install_abort_hook():
    def hook(exc_type, exc, tb):
        r, n = _STATE["rank"], _STATE["size"]
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        try:
            sys.stderr.write(
                f"deepkern.distributed: rank {r} of {n} raised {exc_type.__name__}: {exc}\n"
                f"{text}deepkern.distributed: rank {r} calls MPI Abort to end the job\n"
            )
            sys.stderr.flush()
            sys.stdout.flush()
        finally:
            _STATE["comm"].Abort(1)

    sys.excepthook = hook
    _STATE["hook"] = hook


def abort(message, code=1):
    """Print `message` with this rank and end the whole job (every rank) with `code`."""
    sys.stderr.write(f"deepkern.distributed: rank {rank()} of {world_size()}: {message}\n")
    sys.stderr.flush()
    _comm().Abort(int(code))
