"""rl.batch_train over the ranks of an MPI job: the runs are cut into blocks of at most
BLOCK_RUNS, block b draws from np.random.SeedSequence(seed).spawn(n_blocks)[b] (and likewise
for env_seed), the ranks take contiguous ranges of blocks, and rank 0 gathers the results in
block order. So the result depends on the seeds and the number of runs, not on the number of
ranks (1, 2 or 512 ranks give the same arrays)."""

import numpy as np

BLOCK_RUNS = 1000


def _entropy(comm, seed, who, name):
    """An int every rank agrees on: the seed itself, or one drawn on rank 0 (seed None or a Generator)."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return int(seed)
    if seed is None:
        value = int(np.random.SeedSequence().entropy) if comm.Get_rank() == 0 else None
    elif isinstance(seed, np.random.SeedSequence):
        value = int(seed.generate_state(1, np.uint64)[0])
    elif isinstance(seed, np.random.Generator):
        value = int(seed.integers(0, 1 << 63)) if comm.Get_rank() == 0 else None
    else:
        raise TypeError(
            f"{who}: argument '{name}' must be None, an int, a SeedSequence or a numpy Generator, got {seed!r}"
        )
    return comm.bcast(value, root=0)


def _gather_rows(comm, a, total_rows):
    """Rank-ordered concatenation of every rank's `a` along axis 0 on rank 0 (None elsewhere)."""
    from ..distributed.collectives import mpi_type

    a = np.ascontiguousarray(a)
    row = int(np.prod(a.shape[1:], dtype=np.int64))
    counts = comm.gather(int(a.size), root=0)
    t = mpi_type(a.dtype, "batch_train")
    if comm.Get_rank() == 0:
        out = np.empty((total_rows,) + a.shape[1:], dtype=a.dtype)
        assert sum(counts) == total_rows * row
        comm.Gatherv([a, t], [out, (counts, None), t], root=0)
        return out
    comm.Gatherv([a, t], None, root=0)
    return None


def distributed_batch_train(run_block, runs, seed, env_seed, tails):
    """run_block(n_runs, agent_rng, env_rng) -> tuple of arrays with n_runs rows, the k-th of
    shape (n_runs, *tails[k][0]) and dtype tails[k][1]; returns the gathered tuple on rank 0 and
    None on the other ranks."""
    from .. import distributed as dist
    from ..distributed.data_parallel import bounds

    if not dist.is_initialized():
        dist.init()
    comm = dist._runtime._comm()
    a_ent = _entropy(comm, seed, "batch_train", "seed")
    e_ent = _entropy(comm, env_seed, "batch_train", "env_seed")
    n_blocks = max(1, -(-runs // BLOCK_RUNS))
    sizes = [hi - lo for lo, hi in (bounds(runs, b, n_blocks) for b in range(n_blocks))]
    a_seqs = np.random.SeedSequence(a_ent).spawn(n_blocks)
    e_seqs = np.random.SeedSequence(e_ent).spawn(n_blocks)
    lo, hi = bounds(n_blocks, comm.Get_rank(), comm.Get_size())
    parts = [
        run_block(sizes[b], np.random.default_rng(a_seqs[b]), np.random.default_rng(e_seqs[b])) for b in range(lo, hi)
    ]
    out = []
    for k, (tail, dtype) in enumerate(tails):
        # a rank without blocks (more ranks than blocks) adds no rows
        local = np.concatenate([p[k] for p in parts], axis=0) if parts else np.empty((0,) + tuple(tail), dtype=dtype)
        out.append(_gather_rows(comm, local, runs))
    return tuple(out) if comm.Get_rank() == 0 else None
