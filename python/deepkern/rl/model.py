"""Dense arrays from a toy-text model P[s][a] = [(prob, next_state, reward, terminated), ...].

Planning (value/policy iteration) and the batch trainer work on these arrays instead of the
nested lists. Any environment with `P` works: deepkern's, or Gymnasium's toy-text ones (found
through wrappers via `.unwrapped`).
"""

from dataclasses import dataclass

import numpy as np


@dataclass
class TabularModel:
    """Outcome k of (s, a): prob[s, a, k], next_state[s, a, k], reward[s, a, k], terminated[s, a, k].
    Rows with fewer outcomes are padded with probability 0 (next_state = s, reward 0, terminated).
    n_outcomes[s, a] counts the real ones. initial_state_distrib: None when the env has none.
    time_limit: the env's own episode cap (Gymnasium TimeLimit or max_episode_steps), or None."""

    prob: np.ndarray
    next_state: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    n_outcomes: np.ndarray
    initial_state_distrib: object = None
    time_limit: object = None

    @property
    def n_states(self):
        return self.prob.shape[0]

    @property
    def n_actions(self):
        return self.prob.shape[1]


def _find_P(env, where):
    for obj in (env, getattr(env, "unwrapped", None)):
        if obj is not None and getattr(obj, "P", None) is not None:
            return obj.P, obj
    raise TypeError(f"{where}: argument 'env' has no transition model P[s][a] (Gymnasium toy-text style)")


def _time_limit(env):
    base = getattr(env, "unwrapped", env)
    # A Gymnasium spec's limit is enforced by the TimeLimit wrapper, so only a wrapped env has it.
    spec = getattr(env, "spec", None) if base is not env else None
    limits = [getattr(spec, "max_episode_steps", None), getattr(base, "max_episode_steps", None)]
    limits = [int(v) for v in limits if v is not None]
    return min(limits) if limits else None


def tabular_model(env, where="tabular_model"):
    """-> TabularModel of env's P (validated: probabilities of each (s, a) sum to 1, indices in range)."""
    P, base = _find_P(env, where)
    n_states = len(P)
    if n_states == 0:
        raise ValueError(f"{where}: env.P is empty")
    n_actions = len(P[0])
    K = max(len(P[s][a]) for s in range(n_states) for a in range(n_actions))
    prob = np.zeros((n_states, n_actions, K))
    nxt = np.tile(np.arange(n_states)[:, None, None], (1, n_actions, K))
    rew = np.zeros((n_states, n_actions, K))
    term = np.ones((n_states, n_actions, K), dtype=bool)
    n_out = np.zeros((n_states, n_actions), dtype=np.int64)
    for s in range(n_states):
        Ps = P[s]
        if len(Ps) != n_actions:
            raise ValueError(f"{where}: env.P[{s}] has {len(Ps)} actions, expected {n_actions}")
        for a in range(n_actions):
            outs = Ps[a]
            if len(outs) == 0:
                raise ValueError(f"{where}: env.P[{s}][{a}] has no outcome")
            n_out[s, a] = len(outs)
            for k, (p, s2, r, d) in enumerate(outs):
                prob[s, a, k], nxt[s, a, k], rew[s, a, k], term[s, a, k] = p, s2, r, d
    if (prob < 0).any() or not np.allclose(prob.sum(-1), 1.0, atol=1e-9):
        raise ValueError(f"{where}: env.P probabilities must be >= 0 and sum to 1 for every (s, a)")
    if nxt.min() < 0 or nxt.max() >= n_states:
        raise ValueError(f"{where}: env.P has next states outside [0, {n_states - 1}]")
    isd = getattr(base, "initial_state_distrib", None)
    if isd is not None:
        isd = np.asarray(isd, dtype=np.float64)
        if isd.shape != (n_states,):
            isd = None
    return TabularModel(prob, nxt, rew, term, n_out, isd, _time_limit(env))


def expected_q(model, V, gamma):
    """Q(s, a) = sum_k p_k (r_k + gamma V(s'_k) [not terminated_k]) for every (s, a)."""
    cont = np.where(model.terminated, 0.0, V[model.next_state])
    return (model.prob * (model.reward + gamma * cont)).sum(-1)
