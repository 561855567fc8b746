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

from ._batch_tail import _Outcomes, finish_runs
from ._checks import check_int, check_optional_steps, check_real, make_rng
from .agents import AGENTS, SARSA, ExpectedSARSA, QLearning
from .model import tabular_model


def _agent_class(agent):
    if isinstance(agent, str):
        cls = AGENTS.get(agent.lower())
        if cls is None:
            raise ValueError(
                f"batch_train: argument 'agent' must be one of 'q_learning', 'sarsa', 'expected_sarsa' "
                f"(or the class), got {agent!r}"
            )
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
        codes = np.arange(2**A)
        bits = (codes[:, None] >> np.arange(A)) & 1  # (2^A, A)
        first = np.where(bits.any(1), np.argmax(bits, axis=1), 0).astype(np.int64)
        count = bits.sum(1).astype(np.int64)
        kth = np.zeros((2**A, A), dtype=np.int64)
        for c in range(2**A):
            on = np.flatnonzero(bits[c])
            kth[c, : on.size] = on
        _TABLES[A] = ((1 << np.arange(A, dtype=np.uint8))[:, None].astype(np.uint8), first, count, kth.reshape(-1))
    return _TABLES[A]


def batch_train(
    env,
    agent,
    runs,
    episodes,
    *,
    alpha=0.5,
    gamma=1.0,
    epsilon=0.1,
    epsilon_decay=1.0,
    epsilon_min=0.0,
    initial_q=0.0,
    max_steps=None,
    seed=None,
    env_seed=None,
    return_lengths=False,
    return_q=False,
    sequential_below=8,
    distributed=None,
):
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
    if (
        callable(env)
        and getattr(env, "P", None) is None
        and getattr(getattr(env, "unwrapped", None), "P", None) is None
    ):
        env = env()
    model = tabular_model(env, "batch_train")
    if model.initial_state_distrib is None:
        raise TypeError("batch_train: argument 'env' has no initial_state_distrib (needed to start episodes)")
    if distributed is None:
        from .. import distributed as dist

        distributed = dist.is_initialized() and dist.world_size() > 1
    kw = dict(
        alpha=alpha,
        gamma=gamma,
        epsilon=epsilon,
        epsilon_decay=epsilon_decay,
        epsilon_min=epsilon_min,
        initial_q=initial_q,
        max_steps=max_steps,
        sequential_below=sequential_below,
    )
    if distributed:
        return _spread(env, cls, runs, episodes, model, seed, env_seed, return_lengths, return_q, kw)
    return _train_here(model, cls, runs, episodes, seed, env_seed, return_lengths, return_q, kw)


def _train_here(model, cls, runs, episodes, seed, env_seed, return_lengths, return_q, kw):
    """batch_train in this process, on checked arguments (kw: the options, as for _spread): every
    run stepped in lock-step (the on-policy or off-policy step over the one _Runs state) until all
    have finished."""
    limits = [v for v in (kw["max_steps"], model.time_limit) if v is not None]
    limit = min(limits) if limits else None
    agent_rng, env_rng = make_rng("batch_train", seed), make_rng("batch_train", env_seed)

    b = _Batch(
        model,
        cls,
        runs,
        episodes,
        limit,
        kw["initial_q"],
        agent_rng,
        env_rng,
        {k: kw[k] for k in ("alpha", "gamma", "epsilon_decay", "epsilon_min")},
    )
    st = _Runs(runs if episodes > 0 else 0, b.S, kw["epsilon"])
    _reset(b, st, np.arange(st.n))
    st.row = st.base + st.s
    step = _on_policy_step if b.on_policy else _off_policy_step
    while st.n:
        if st.n < kw["sequential_below"]:
            _finish_one_by_one(b, st)
            break
        e = step(b, st)
        if e.size:
            e = _drop_finished(b, st, e)
            if e.size and not b.on_policy:  # (SARSA has reset its runs already)
                _reset(b, st, e)
                st.row[e] = st.base[e] + st.s[e]
    returns, lengths, qT, A, S = b.returns, b.lengths, b.qT, b.A, b.S
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
        return batch_train(
            env,
            cls,
            n,
            episodes,
            seed=agent_rng,
            env_seed=env_rng,
            return_lengths=True,
            return_q=True,
            distributed=False,
            **kw,
        )

    S, A = model.prob.shape[:2]
    tails = [((episodes,), np.float64), ((episodes,), np.int64), ((S, A), np.float64)]
    got = distributed_batch_train(run_block, runs, seed, env_seed, tails)
    if got is None:
        return None
    out = [got[0]] + ([got[1]] if return_lengths else []) + ([got[2]] if return_q else [])
    return out[0] if len(out) == 1 else tuple(out)


class _Batch:
    """What all runs share: the model as outcome-major flat tables, the Q tables of all runs, the
    results, the hyperparameters and the two generators."""

    def __init__(self, model, cls, runs, episodes, limit, initial_q, agent_rng, env_rng, hp):
        S, A, K = model.prob.shape
        self.S, self.A, self.K, self.SA = S, A, K, S * A
        self.episodes, self.limit, self.hp = episodes, limit, hp
        self.alpha, self.gamma = hp["alpha"], hp["gamma"]
        self.cls, self.on_policy, self.expected = cls, cls is SARSA, cls is ExpectedSARSA
        self.agent_rng, self.env_rng = agent_rng, env_rng
        # Outcome-major flat tables: entry k * S*A + (s * A + a) is outcome k of (s, a). Cumulative
        # probabilities are accumulated in the order the sequential env accumulates them.
        SA = self.SA
        self.cum = np.ascontiguousarray(np.cumsum(model.prob, axis=-1).reshape(SA, K).T)
        self.nxt = np.ascontiguousarray(model.next_state.reshape(SA, K).T).reshape(-1)
        self.rew = np.ascontiguousarray(model.reward.reshape(SA, K).T).reshape(-1)
        self.term = np.ascontiguousarray(model.terminated.reshape(SA, K).T).reshape(-1)
        self.last = (model.n_outcomes - 1).reshape(SA)
        self.isd_cum = np.cumsum(model.initial_state_distrib)
        self.isd_last = int(np.flatnonzero(model.initial_state_distrib > 0)[-1])
        # Q of all runs, action-major: qT[a, r*S + s] = Q_r(s, a); qf is the same memory, flat.
        self.qT = np.full((A, runs * S), initial_q)
        self.qf = self.qT.reshape(-1)
        self.stride = runs * S
        self.returns = np.zeros((runs, episodes))
        self.lengths = np.zeros((runs, episodes), dtype=np.int64)

    def start_states(self, count):
        """env.reset()'s start state for `count` runs: one env draw each."""
        u = self.env_rng.random(count)
        return np.minimum(np.searchsorted(self.isd_cum, u, side="right"), self.isd_last)


class _Runs:
    """Per-run state of the runs still going (compacted when runs finish). row = base + s is the
    run's row in the flat Q; t = steps so far in the episode, G = its return so far."""

    FIELDS = ("ids", "base", "s", "a", "eps", "ep", "t", "G", "row")

    def __init__(self, n, S, epsilon):
        self.ids = np.arange(n)
        self.n = n
        self.base = self.ids * S
        self.s = np.zeros(n, dtype=np.int64)
        self.a = np.zeros(n, dtype=np.int64)
        self.eps = np.full(n, epsilon)
        self.ep = np.zeros(n, dtype=np.int64)
        self.t = np.zeros(n, dtype=np.int64)
        self.G = np.zeros(n)
        self.row = self.base + self.s


def _reset(b, st, i):
    """env.reset() for runs i (then SARSA picks their first action): same draws as sequential."""
    st.s[i] = b.start_states(i.size)
    st.t[i] = 0
    st.G[i] = 0.0
    if b.on_policy:
        st.a[i] = egreedy_batch(b.qT.take(st.base[i] + st.s[i], axis=1), st.eps[i], b.agent_rng)


def _end_episodes(b, st, e):
    """Runs e finished an episode: record it, count it, decay epsilon (as end_episode())."""
    b.returns[st.ids[e], st.ep[e]] = st.G[e]
    b.lengths[st.ids[e], st.ep[e]] = st.t[e]
    st.ep[e] += 1
    st.eps[e] = np.maximum(b.hp["epsilon_min"], st.eps[e] * b.hp["epsilon_decay"])


def _env_step(b, st):
    """env.step(a) for every run: the first outcome whose cumulative probability exceeds u.
    Returns (s2, r, d, row2, flat, q_sa, e): next state, reward, terminated, the next state's row,
    the flat Q index and value of (s, a), and the runs whose episode ends (terminated or truncated)."""
    sa = st.s * b.A + st.a
    u = b.env_rng.random(st.n)
    if b.K > 1:
        k = np.minimum((b.cum.take(sa, axis=1) <= u).sum(axis=0), b.last.take(sa))
        sa = k * b.SA + sa
    s2, r, d = b.nxt.take(sa), b.rew.take(sa), b.term.take(sa)
    st.t += 1
    st.G += r
    row2 = st.base + s2
    flat = st.a * b.stride + st.row
    q_sa = b.qf.take(flat)
    e = np.flatnonzero((d | (st.t >= b.limit)) if b.limit is not None else d)
    return s2, r, d, row2, flat, q_sa, e


def _off_policy_step(b, st):
    """Q-learning / expected SARSA: act, step, update toward max (or the expectation) of Q(s', .).
    Returns the runs whose episode ended (recorded, not yet reset)."""
    st.a = egreedy_batch(b.qT.take(st.row, axis=1), st.eps, b.agent_rng)
    s2, r, d, row2, flat, q_sa, e = _env_step(b, st)
    q2 = b.qT.take(row2, axis=1)
    v_next = q2.max(axis=0)
    if b.expected:
        v_next = st.eps * (q2.sum(axis=0) / b.A) + (1.0 - st.eps) * v_next
    # TD target (0 bootstrap on termination, exactly as TabularAgent.update).
    boot = np.where(d, 0.0, b.gamma * v_next)
    b.qf[flat] = q_sa + b.alpha * (r + boot - q_sa)
    st.s, st.row = s2, row2
    if e.size:
        _end_episodes(b, st, e)
    return e


def _on_policy_step(b, st):
    """SARSA: a continuing run picks a' = act(s') before its update; a run whose episode ended
    updates, resets and picks its first action from the updated table. Either way one act per run,
    so all are drawn in ONE call: Q columns are gathered before any update, and a reset run's column
    is patched where its own update hit it. Returns the runs whose episode ended (already reset)."""
    s2, r, d, row2, flat, q_sa, e = _env_step(b, st)
    boot_e = q_new_e = reset_idx = None
    if e.size:
        boot_e = np.zeros(e.size)
        if b.limit is not None:  # truncated runs bootstrap: their a' comes first, pre-decay
            tr = np.flatnonzero(~d[e])
            if tr.size:
                et = e[tr]
                a_tr = egreedy_batch(b.qT.take(row2[et], axis=1), st.eps[et], b.agent_rng)
                boot_e[tr] = b.gamma * b.qf.take(a_tr * b.stride + row2[et])
        q_new_e = q_sa[e] + b.alpha * (r[e] + boot_e - q_sa[e])
        _end_episodes(b, st, e)
        reset_idx = e[st.ep[e] < b.episodes]
    resetting = reset_idx is not None and reset_idx.size > 0
    act_row = row2
    if resetting:
        s0 = b.start_states(reset_idx.size)
        act_row = row2.copy()
        act_row[reset_idx] = st.base[reset_idx] + s0
    cols = b.qT.take(act_row, axis=1)
    if resetting:
        hit = st.row[e] == act_row[e]  # the run's last update is in the row it acts in now
        if hit.any():
            cols[st.a[e[hit]], e[hit]] = q_new_e[hit]
    a_next = egreedy_batch(cols, st.eps, b.agent_rng)  # finished runs draw too: harmless
    boot = b.gamma * cols.reshape(-1).take(a_next * st.n + np.arange(st.n))
    if e.size:
        boot[e] = boot_e
    b.qf[flat] = q_sa + b.alpha * (r + boot - q_sa)
    st.s, st.row, st.a = s2, act_row, a_next
    if resetting:
        st.s[reset_idx] = s0
        st.t[reset_idx] = 0
        st.G[reset_idx] = 0.0
    return e


def _drop_finished(b, st, e):
    """Drop the runs that have done all their episodes; returns e re-indexed to the runs kept."""
    keep = st.ep < b.episodes
    if keep.all():
        return e
    ended = np.zeros(st.n, dtype=bool)
    ended[e] = True
    for f in _Runs.FIELDS:
        setattr(st, f, getattr(st, f)[keep])
    st.n = st.ids.size
    return np.flatnonzero(ended[keep])


def _finish_one_by_one(b, st):
    """The few runs left finish with the scalar agent code (rl/_batch_tail.py), same draws."""
    outcomes = _Outcomes(b.cum, b.nxt, b.rew, b.term, b.last + 1, b.SA)
    isd_list = b.isd_cum.tolist()

    def start_sampler(u):
        return min(int(np.searchsorted(isd_list, u, side="right")), b.isd_last)

    finish_runs(b, st, outcomes, start_sampler)
