"""Many independent learning runs at once: R agents, each on its own copy of one environment,
advanced in lock-step with numpy (one array operation per stage of a step, over all R runs).

Every run follows the sequential semantics of rl.train exactly: same step order, same update,
same per-episode epsilon decay, same truncation rule. Runs draw from two shared generators,
one for the agents (seed) and one for the environments (env_seed), in the same pattern as the
sequential agent and environment, so with runs=1:

    batch_train(env, "sarsa", 1, E, alpha=.., seed=3, env_seed=7)
      == train(env, SARSA(S, A, alpha=.., seed=3), E, seed=7)          (bit for bit)

With runs > 1 the draws of different runs interleave, so the runs are independent and
identically distributed, but run r is not the sequential run of any particular seed.
"""
import numpy as np

from ._checks import check_int, check_optional_steps, check_real, make_rng
from ._batch_tail import _Outcomes, finish_runs
from .agents import AGENTS, ExpectedSARSA, QLearning, SARSA
from .model import tabular_model


def _agent_class(agent):
    if isinstance(agent, str):
        cls = AGENTS.get(agent.lower())
        if cls is None:
            raise ValueError(f"batch_train: argument 'agent' must be one of 'q_learning', 'sarsa', 'expected_sarsa' "
                             f"(or the class), got {agent!r}")
        return cls
    if agent in (QLearning, SARSA, ExpectedSARSA):
        return agent
    raise TypeError(f"batch_train: argument 'agent' must be a name or QLearning / SARSA / ExpectedSARSA, got {agent!r}")


def egreedy_batch(q_cols, epsilon, rng):
    """Epsilon-greedy actions for n states at once; q_cols is (n_actions, n): column i holds
    Q(s_i, .). (Action-major because numpy reduces a short leading axis far faster than a short
    trailing one.) Draws as TabularAgent.act does: u (n,), explore if u < epsilon; then
    floor(u' * A) for the explorers, in order; then the floor(u'' * k)-th of the k tied greedy
    actions for greedy columns with ties, in order."""
    A, n = q_cols.shape
    explore = rng.random(n) < epsilon
    is_max = q_cols == q_cols.max(axis=0)
    tables = _tie_tables(A)
    if tables is not None:
        # The set of greedy actions as a bit pattern; small tables give the first greedy action,
        # the tie count and the k-th tied action of every pattern.
        pow2, first_of, count_of, kth_of = tables
        code = (is_max.view(np.uint8) * pow2).sum(axis=0, dtype=np.uint8)
        actions = first_of.take(code)
        count = count_of.take(code)
    else:
        actions = np.argmax(is_max, axis=0)
        count = is_max.sum(axis=0)
    n_exp = np.count_nonzero(explore)
    if n_exp:
        actions[explore] = (rng.random(n_exp) * A).astype(np.int64)
    tied = (count > 1) > explore
    n_tied = np.count_nonzero(tied)
    if n_tied:
        k = (rng.random(n_tied) * count[tied]).astype(np.int64)  # the k-th (0-based) tied action
        if tables is not None:
            actions[tied] = kth_of.take(code[tied].astype(np.int64) * A + k)
        else:
            im = is_max[:, tied]
            rank = np.cumsum(im, axis=0) - 1
            actions[tied] = np.argmax(im & (rank == k), axis=0)
    return actions


_TABLES = {}


def _tie_tables(A):
    """For A <= 8 actions: (pow2 (A, 1) uint8, first (2^A,), count (2^A,), kth (2^A * A,)) int64 tables
    indexed by the bit pattern of greedy actions; None for more actions."""
    if A > 8:
        return None
    if A not in _TABLES:
        codes = np.arange(2 ** A)
        bits = (codes[:, None] >> np.arange(A)) & 1  # (2^A, A)
        first = np.where(bits.any(1), np.argmax(bits, axis=1), 0).astype(np.int64)
        count = bits.sum(1).astype(np.int64)
        kth = np.zeros((2 ** A, A), dtype=np.int64)
        for c in range(2 ** A):
            on = np.flatnonzero(bits[c])
            kth[c, : on.size] = on
        _TABLES[A] = ((1 << np.arange(A, dtype=np.uint8))[:, None].astype(np.uint8), first, count, kth.reshape(-1))
    return _TABLES[A]


def batch_train(env, agent, runs, episodes, *, alpha=0.5, gamma=1.0, epsilon=0.1, epsilon_decay=1.0,
                epsilon_min=0.0, initial_q=0.0, max_steps=None, seed=None, env_seed=None,
                return_lengths=False, return_q=False, sequential_below=8, distributed=None):
    """Train `runs` independent agents for `episodes` episodes each -> returns, shape (runs, episodes).

    env: an environment with a model P and a start distribution (any deepkern env, or a Gymnasium
    toy-text env such as gymnasium.make("CliffWalking-v1")), or a zero-argument factory of one.
    All runs share the model; each has its own state, Q table and epsilon.
    agent: "q_learning", "sarsa", "expected_sarsa" or the class QLearning / SARSA / ExpectedSARSA.
    alpha, gamma, epsilon, epsilon_decay, epsilon_min, initial_q: as for the agents.
    max_steps: per-episode cap (with the env's own time limit, whichever is smaller).
    seed / env_seed: the agents' and the environments' generators (None, int or Generator).
    return_lengths / return_q add, in this order, the (runs, episodes) steps per episode and the
    (runs, n_states, n_actions) final Q tables to the result tuple.
    sequential_below: once fewer runs than this are still going (stragglers stuck in long
    episodes), they are finished one by one with the scalar agent code, which is cheaper per step
    than numpy calls on tiny arrays; the draws and results are the same either way. 0 keeps
    every step vectorised.
    distributed: spread the runs over the ranks of an MPI job (deepkern.distributed) and gather
    the results on rank 0, which returns them; the other ranks return None. None (the default)
    means: when deepkern.distributed is initialised with more than one rank. The runs then form
    blocks of at most 1000 (rl._batch_dist.BLOCK_RUNS) seeded from np.random.SeedSequence(seed)
    .spawn(n_blocks) (env_seed likewise), so the result is the same on any number of ranks; it is
    not the result of the same call without distributed. Every rank passes the same arguments.
    """
    cls = _agent_class(agent)
    runs = check_int("batch_train", "runs", runs, low=1)
    episodes = check_int("batch_train", "episodes", episodes, low=0)
    alpha = check_real("batch_train", "alpha", alpha, 0.0, 1.0, low_open=True)
    gamma = check_real("batch_train", "gamma", gamma, 0.0, 1.0)
    epsilon = check_real("batch_train", "epsilon", epsilon, 0.0, 1.0)
    epsilon_decay = check_real("batch_train", "epsilon_decay", epsilon_decay, 0.0, 1.0, low_open=True)
    epsilon_min = check_real("batch_train", "epsilon_min", epsilon_min, 0.0, epsilon)
    initial_q = check_real("batch_train", "initial_q", initial_q, -np.inf, np.inf)
    max_steps = check_optional_steps("batch_train", "max_steps", max_steps)
    sequential_below = check_int("batch_train", "sequential_below", sequential_below, low=0)
    if callable(env) and getattr(env, "P", None) is None and getattr(getattr(env, "unwrapped", None), "P", None) is None:
        env = env()
    model = tabular_model(env, "batch_train")
    if model.initial_state_distrib is None:
        raise TypeError("batch_train: argument 'env' has no initial_state_distrib (needed to start episodes)")
    if distributed is None:
        from .. import distributed as dist

        distributed = dist.is_initialized() and dist.world_size() > 1
    if distributed:
        return _spread(env, cls, runs, episodes, model, seed, env_seed, return_lengths, return_q,
                       dict(alpha=alpha, gamma=gamma, epsilon=epsilon, epsilon_decay=epsilon_decay,
                            epsilon_min=epsilon_min, initial_q=initial_q, max_steps=max_steps,
                            sequential_below=sequential_below))
    limits = [v for v in (max_steps, model.time_limit) if v is not None]
    limit = min(limits) if limits else None
    agent_rng, env_rng = make_rng("batch_train", seed), make_rng("batch_train", env_seed)

    S, A, K = model.prob.shape
    # Outcome-major flat tables: entry k * S*A + (s * A + a) is outcome k of (s, a). Cumulative
    # probabilities are accumulated in the order the sequential env accumulates them.
    SA = S * A
    cum = np.ascontiguousarray(np.cumsum(model.prob, axis=-1).reshape(SA, K).T)
    nxt = np.ascontiguousarray(model.next_state.reshape(SA, K).T).reshape(-1)
    rew = np.ascontiguousarray(model.reward.reshape(SA, K).T).reshape(-1)
    term = np.ascontiguousarray(model.terminated.reshape(SA, K).T).reshape(-1)
    last = (model.n_outcomes - 1).reshape(SA)
    isd_cum = np.cumsum(model.initial_state_distrib)
    isd_last = int(np.flatnonzero(model.initial_state_distrib > 0)[-1])

    # Q of all runs, action-major: qT[a, r*S + s] = Q_r(s, a); qf is the same memory, flat.
    qT = np.full((A, runs * S), initial_q)
    qf = qT.reshape(-1)
    stride = runs * S
    returns = np.zeros((runs, episodes))
    lengths = np.zeros((runs, episodes), dtype=np.int64)
    on_policy = cls is SARSA
    expected = cls is ExpectedSARSA

    # Per-run state of the runs still going (compacted when runs finish). row = base + s is the
    # run's row in the flat Q; t = steps so far in the episode, G = its return so far.
    ids = np.arange(runs) if episodes > 0 else np.arange(0)
    n = ids.size
    base = ids * S
    s = np.zeros(n, dtype=np.int64)
    a = np.zeros(n, dtype=np.int64)
    eps = np.full(n, epsilon)
    ep = np.zeros(n, dtype=np.int64)
    t = np.zeros(n, dtype=np.int64)
    G = np.zeros(n)

    def reset(i):
        """env.reset() for runs i (then SARSA picks their first action): same draws as sequential."""
        s[i] = np.minimum(np.searchsorted(isd_cum, env_rng.random(i.size), side="right"), isd_last)
        t[i] = 0
        G[i] = 0.0
        if on_policy:
            a[i] = egreedy_batch(qT.take(base[i] + s[i], axis=1), eps[i], agent_rng)

    def end_episodes(e):
        """Runs e finished an episode: record it, count it, decay epsilon (as end_episode())."""
        returns[ids[e], ep[e]] = G[e]
        lengths[ids[e], ep[e]] = t[e]
        ep[e] += 1
        eps[e] = np.maximum(epsilon_min, eps[e] * epsilon_decay)

    reset(np.arange(n))
    row = base + s
    while n:
        if n < sequential_below:
            outcomes = _Outcomes(cum, nxt, rew, term, last + 1, SA)
            isd_list = isd_cum.tolist()

            def start_sampler(u):
                return min(int(np.searchsorted(isd_list, u, side="right")), isd_last)

            hp = dict(alpha=alpha, gamma=gamma, epsilon_decay=epsilon_decay, epsilon_min=epsilon_min)
            state = dict(ids=ids, base=base, s=s, a=a, eps=eps, ep=ep, t=t, G=G)
            finish_runs(cls, qT, state, outcomes, start_sampler, A, S, episodes, limit, hp, agent_rng, env_rng,
                        returns, lengths)
            break
        if not on_policy:
            a = egreedy_batch(qT.take(row, axis=1), eps, agent_rng)
        # env.step(a): the first outcome whose cumulative probability exceeds u.
        sa = s * A + a
        u = env_rng.random(n)
        if K > 1:
            k = np.minimum((cum.take(sa, axis=1) <= u).sum(axis=0), last.take(sa))
            sa = k * SA + sa
        s2, r, d = nxt.take(sa), rew.take(sa), term.take(sa)
        t += 1
        G += r
        row2 = base + s2
        flat = a * stride + row
        q_sa = qf.take(flat)
        e = np.flatnonzero((d | (t >= limit)) if limit is not None else d)
        if on_policy:
            # SARSA: a continuing run picks a' = act(s') before its update; a run whose episode
            # ended updates, resets and picks its first action from the updated table. Either
            # way one act per run, so all are drawn in ONE call: Q columns are gathered before
            # any update, and a reset run's column is patched where its own update hit it.
            boot_e = q_new_e = reset_idx = None
            if e.size:
                boot_e = np.zeros(e.size)
                if limit is not None:  # truncated runs bootstrap: their a' comes first, pre-decay
                    tr = np.flatnonzero(~d[e])
                    if tr.size:
                        et = e[tr]
                        a_tr = egreedy_batch(qT.take(row2[et], axis=1), eps[et], agent_rng)
                        boot_e[tr] = gamma * qf.take(a_tr * stride + row2[et])
                q_new_e = q_sa[e] + alpha * (r[e] + boot_e - q_sa[e])
                end_episodes(e)
                reset_idx = e[ep[e] < episodes]
            act_row = row2
            if reset_idx is not None and reset_idx.size:
                s0 = np.minimum(np.searchsorted(isd_cum, env_rng.random(reset_idx.size), side="right"), isd_last)
                act_row = row2.copy()
                act_row[reset_idx] = base[reset_idx] + s0
            cols = qT.take(act_row, axis=1)
            if reset_idx is not None and reset_idx.size:
                hit = row[e] == act_row[e]  # the run's last update is in the row it acts in now
                if hit.any():
                    cols[a[e[hit]], e[hit]] = q_new_e[hit]
            a_next = egreedy_batch(cols, eps, agent_rng)  # finished runs draw too: harmless
            boot = gamma * cols.reshape(-1).take(a_next * n + np.arange(n))
            if e.size:
                boot[e] = boot_e
            qf[flat] = q_sa + alpha * (r + boot - q_sa)
            s, row, a = s2, act_row, a_next
            if reset_idx is not None and reset_idx.size:
                s[reset_idx] = s0
                t[reset_idx] = 0
                G[reset_idx] = 0.0
        else:
            q2 = qT.take(row2, axis=1)
            v_next = q2.max(axis=0)
            if expected:
                v_next = eps * (q2.sum(axis=0) / A) + (1.0 - eps) * v_next
            # TD target (0 bootstrap on termination, exactly as TabularAgent.update).
            boot = np.where(d, 0.0, gamma * v_next)
            qf[flat] = q_sa + alpha * (r + boot - q_sa)
            s, row = s2, row2
            if e.size:
                end_episodes(e)
        if e.size:
            keep = ep < episodes
            if not keep.all():  # drop the runs that have done all their episodes
                ended = np.zeros(n, dtype=bool)
                ended[e] = True
                ids, base, s, a, eps, ep, t, G, row, ended = (
                    x[keep] for x in (ids, base, s, a, eps, ep, t, G, row, ended))
                n = ids.size
                e = np.flatnonzero(ended)
            if e.size and not on_policy:  # (SARSA has reset its runs already)
                reset(e)
                row[e] = base[e] + s[e]
    out = [returns]
    if return_lengths:
        out.append(lengths)
    if return_q:
        out.append(qT.reshape(A, runs, S).transpose(1, 2, 0).copy())
    return out[0] if len(out) == 1 else tuple(out)


def _spread(env, cls, runs, episodes, model, seed, env_seed, return_lengths, return_q, kw):
    """batch_train(distributed=True): blocks of runs over the ranks, results on rank 0 (see _batch_dist)."""
    from ._batch_dist import distributed_batch_train

    def run_block(n, agent_rng, env_rng):
        return batch_train(env, cls, n, episodes, seed=agent_rng, env_seed=env_rng, return_lengths=True,
                           return_q=True, distributed=False, **kw)

    S, A = model.prob.shape[:2]
    tails = [((episodes,), np.float64), ((episodes,), np.int64), ((S, A), np.float64)]
    got = distributed_batch_train(run_block, runs, seed, env_seed, tails)
    if got is None:
        return None
    out = [got[0]] + ([got[1]] if return_lengths else []) + ([got[2]] if return_q else [])
    return out[0] if len(out) == 1 else tuple(out)
