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
    is_max = (q_cols == q_cols.max(axis=0)).view(np.int8)
    # first greedy action = A - max_j (A - j) [is_max_j]; argmax over axis 0 is several times slower
    actions = (A - (is_max * _weights(A)).max(axis=0)).astype(np.int64)
    n_exp = np.count_nonzero(explore)
    if n_exp:
        actions[explore] = (rng.random(n_exp) * A).astype(np.int64)
    count = is_max.sum(axis=0, dtype=np.int8 if A < 127 else np.int64)
    tied = (count > 1) & ~explore
    n_tied = np.count_nonzero(tied)
    if n_tied:
        target = (rng.random(n_tied) * count[tied]).astype(np.int64) + 1  # the target-th tied action
        im = is_max[:, tied]
        seen = np.zeros(n_tied, dtype=np.int64)
        index = np.zeros(n_tied, dtype=np.int64)
        for j in range(A - 1):  # index = how many actions come before the target-th tied one
            seen += im[j]
            index += seen < target
        actions[tied] = index
    return actions


_WEIGHTS = {}


def _weights(A):
    w = _WEIGHTS.get(A)
    if w is None:
        w = _WEIGHTS[A] = np.arange(A, 0, -1, dtype=np.int8 if A < 127 else np.int64)[:, None]
    return w


def batch_train(env, agent, runs, episodes, *, alpha=0.5, gamma=1.0, epsilon=0.1, epsilon_decay=1.0,
                epsilon_min=0.0, initial_q=0.0, max_steps=None, seed=None, env_seed=None,
                return_lengths=False, return_q=False):
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
    if callable(env) and getattr(env, "P", None) is None and getattr(getattr(env, "unwrapped", None), "P", None) is None:
        env = env()
    model = tabular_model(env, "batch_train")
    if model.initial_state_distrib is None:
        raise TypeError("batch_train: argument 'env' has no initial_state_distrib (needed to start episodes)")
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

    reset(np.arange(n))
    row = base + s
    while n:
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
        # TD target (0 bootstrap on termination, exactly as TabularAgent.update).
        row2 = base + s2
        if on_policy:  # SARSA picks a' (not on terminal states) before its update
            go = np.flatnonzero(~d)
            if go.size == n:
                a2 = egreedy_batch(qT.take(row2, axis=1), eps, agent_rng)
            else:
                a2 = np.zeros(n, dtype=np.int64)
                if go.size:
                    a2[go] = egreedy_batch(qT.take(row2[go], axis=1), eps[go], agent_rng)
            v_next = qf.take(a2 * stride + row2)
        else:
            q2 = qT.take(row2, axis=1)
            v_next = q2.max(axis=0)
            if expected:
                v_next = eps * (q2.sum(axis=0) / A) + (1.0 - eps) * v_next
        boot = np.where(d, 0.0, gamma * v_next)
        flat = a * stride + row
        q_sa = qf.take(flat)
        qf[flat] = q_sa + alpha * (r + boot - q_sa)
        s, row = s2, row2
        if on_policy:
            a = a2
        e = np.flatnonzero((d | (t >= limit)) if limit is not None else d)
        if e.size:  # episodes that ended: record, decay epsilon, drop finished runs, reset the rest
            returns[ids[e], ep[e]] = G[e]
            lengths[ids[e], ep[e]] = t[e]
            ep[e] += 1
            eps[e] = np.maximum(epsilon_min, eps[e] * epsilon_decay)
            keep = ep < episodes
            if not keep.all():
                ended = np.zeros(n, dtype=bool)
                ended[e] = True
                ids, base, s, a, eps, ep, t, G, row, ended = (
                    x[keep] for x in (ids, base, s, a, eps, ep, t, G, row, ended))
                n = ids.size
                e = np.flatnonzero(ended)
            if e.size:
                reset(e)
                row[e] = base[e] + s[e]
    out = [returns]
    if return_lengths:
        out.append(lengths)
    if return_q:
        out.append(qT.reshape(A, runs, S).transpose(1, 2, 0).copy())
    return out[0] if len(out) == 1 else tuple(out)
