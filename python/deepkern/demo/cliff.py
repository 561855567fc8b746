"""Q-learning vs SARSA on the cliff (Sutton & Barto Example 6.6), and greedy paths as text grids."""

import numpy as np

from .. import rl

ARROWS = "^>v<"  # actions 0 up, 1 right, 2 down, 3 left (deepkern's grid envs)


def cliff_runs(episodes=500, alpha=0.5, epsilon=0.1, gamma=1.0, seed=0):
    """One learning run of each agent on CliffWalking -> {name: (agent, per-episode returns)}."""
    out = {}
    for name, cls in (("Q-learning", rl.QLearning), ("SARSA", rl.SARSA)):
        env = rl.CliffWalking()
        agent = cls(env.observation_space.n, env.action_space.n, alpha=alpha, gamma=gamma, epsilon=epsilon, seed=seed)
        returns = rl.train(env, agent, episodes, seed=seed)
        out[name] = (agent, returns)
    return out


def path_grid(env, states):
    """The grid as text: the cliff 'C', start 'S', goal 'G', free cells '.', and along the path
    (states visited, as rl.rollout returns them) the arrow of the move taken from each cell."""
    rows, cols = env.shape
    chars = np.full((rows, cols), ".", dtype="<U1")
    chars[3, 1:11] = "C"
    chars[3, 0], chars[3, 11] = "S", "G"
    for s, s2 in zip(states[:-1], states[1:]):
        (r, c), (r2, c2) = divmod(int(s), cols), divmod(int(s2), cols)
        step = (r2 - r, c2 - c)
        deltas = list(env.action_deltas)
        chars[r, c] = ARROWS[deltas.index(step)] if step in deltas else "*"
    return "\n".join(" ".join(row) for row in chars)
