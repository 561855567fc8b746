"""The agent-environment loop: train, rollout, discounted_return.

These work with any environment that has Gymnasium's API (deepkern's own or gymnasium.make(...)):
reset(seed=...) -> (obs, info), step(a) -> (obs, reward, terminated, truncated, info), and
observation_space.n / action_space.n for the checks.
"""

import numpy as np

from ._checks import check_int, check_optional_steps, check_real


def _space_n(env, which):
    try:
        return int(getattr(env, which).n)
    except AttributeError:
        raise TypeError(f"env has no discrete {which} (expected {which}.n, as Gymnasium's Discrete)") from None


def train(env, agent, episodes, max_steps=None, *, seed=None, return_lengths=False):
    """Run `episodes` episodes of `agent` learning on `env`; -> per-episode returns (float array).

    The return of an episode is its undiscounted sum of rewards (the book's "sum of rewards
    during episode"). max_steps caps each episode (it ends truncated, and the last update still
    bootstraps); the environment's own time limit (a Gymnasium TimeLimit) applies as well.
    seed: passed to the first env.reset (later resets continue the environment's generator).
    return_lengths=True: -> (returns, lengths), lengths = steps taken in each episode.

    The agent needs act(s) and update(s, a, r, s_next, terminated[, a_next]); an agent with
    needs_next_action=True (SARSA) picks a' before its update and gets it, as in Sutton & Barto's
    SARSA box; the others update first and pick the next action from the updated table.
    end_episode() is called after each episode when the agent has it.

    >>> from deepkern import rl
    >>> env = rl.CliffWalking()
    >>> agent = rl.SARSA(env.observation_space.n, env.action_space.n, alpha=0.5, gamma=1.0, epsilon=0.1, seed=0)
    >>> returns = rl.train(env, agent, episodes=200, seed=0)
    >>> returns.shape, bool(returns[-50:].mean() > -100)
    ((200,), True)
    """
    episodes = check_int("train", "episodes", episodes, low=0)
    max_steps = check_optional_steps("train", "max_steps", max_steps)
    n_states, n_actions = _space_n(env, "observation_space"), _space_n(env, "action_space")
    q = getattr(agent, "q", None)
    if q is not None and np.shape(q) != (n_states, n_actions):
        raise ValueError(
            f"train: argument 'agent' has a Q table of shape {np.shape(q)}, but env has "
            f"{n_states} states and {n_actions} actions"
        )
    on_policy = bool(getattr(agent, "needs_next_action", False))
    end_episode = getattr(agent, "end_episode", None)
    act, update = agent.act, agent.update
    returns = np.zeros(episodes)
    lengths = np.zeros(episodes, dtype=np.int64)
    for ep in range(episodes):
        s, _ = env.reset(seed=seed) if ep == 0 and seed is not None else env.reset()
        s = int(s)
        a = act(s) if on_policy else None
        total, t = 0.0, 0
        while True:
            if not on_policy:
                a = act(s)
            s2, r, terminated, truncated, _ = env.step(a)
            s2 = int(s2)
            t += 1
            total += r
            if max_steps is not None and t >= max_steps:
                truncated = True
            if on_policy:
                a2 = None if terminated else act(s2)
                update(s, a, r, s2, terminated, a2)
                a = a2
            else:
                update(s, a, r, s2, terminated)
            s = s2
            if terminated or truncated:
                break
        returns[ep], lengths[ep] = total, t
        if end_episode is not None:
            end_episode()
    return (returns, lengths) if return_lengths else returns


def _policy_fn(policy, n_states, n_actions):
    if callable(policy):
        return policy
    p = np.asarray(policy)
    if p.ndim != 1 or p.shape[0] != n_states:
        raise ValueError(
            f"rollout: argument 'policy' must be a callable or an int array of length {n_states} "
            f"(one action per state), got shape {p.shape}"
        )
    if p.dtype.kind not in "iu":
        raise TypeError(f"rollout: argument 'policy' must hold integer actions, got dtype {p.dtype}")
    if p.size and (p.min() < 0 or p.max() >= n_actions):
        raise ValueError(f"rollout: argument 'policy' holds actions outside [0, {n_actions - 1}]")
    table = p.tolist()
    return table.__getitem__


def rollout(env, policy, max_steps=1000, *, seed=None, return_rewards=False):
    """Follow `policy` from env.reset() -> int array of the states visited, the reset state and
    the last state both included (so a path of k steps gives k + 1 states).

    policy: an int array with one action per state, or a callable state -> action.
    The episode stops when it terminates or is truncated, or after max_steps steps (a greedy
    policy can loop forever, so the cap always applies). seed: passed to env.reset.
    return_rewards=True: -> (states, rewards).

    >>> from deepkern import rl
    >>> env = rl.CliffWalking()
    >>> V, policy = rl.value_iteration(env, gamma=1.0)
    >>> path = rl.rollout(env, policy, max_steps=100)
    >>> int(path[0]), int(path[-1]), len(path) - 1          # start, goal, 13 steps along the edge
    (36, 47, 13)
    """
    max_steps = check_int("rollout", "max_steps", max_steps, low=0)
    n_states, n_actions = _space_n(env, "observation_space"), _space_n(env, "action_space")
    pi = _policy_fn(policy, n_states, n_actions)
    s, _ = env.reset(seed=seed)
    states, rewards = [int(s)], []
    for _ in range(max_steps):
        s, r, terminated, truncated, _ = env.step(pi(states[-1]))
        states.append(int(s))
        rewards.append(float(r))
        if terminated or truncated:
            break
    states = np.array(states, dtype=np.int64)
    return (states, np.array(rewards)) if return_rewards else states


def discounted_return(rewards, gamma):
    """G = sum_k gamma^k r_k over the last axis (rewards: 1-D for one episode, or (..., T)).

    >>> from deepkern import rl
    >>> rl.discounted_return([1.0, 1.0, 1.0], gamma=0.5)
    1.75
    """
    gamma = check_real("discounted_return", "gamma", gamma, 0.0, 1.0)
    r = np.asarray(rewards)
    if r.dtype.kind not in "fiub":
        raise TypeError(f"discounted_return: argument 'rewards' must be numeric, got dtype {r.dtype}")
    if r.ndim == 0:
        raise ValueError("discounted_return: argument 'rewards' must have at least one dimension (a sequence)")
    powers = gamma ** np.arange(r.shape[-1], dtype=np.float64)  # 0 ** 0 == 1, so gamma = 0 gives r_0
    g = r.astype(np.float64) @ powers
    return float(g) if np.ndim(g) == 0 else g
