"""Sutton & Barto Example 6.6, cliff walking: SARSA vs Q-learning (alpha 0.5, epsilon 0.1).

Learning curves (sum of rewards per episode, averaged over many independent runs, as Figure 6.4),
the greedy policy of each agent as arrows and its value map V(s) = max_a Q(s, a). Q-learning
learns the optimal path along the cliff edge and falls off while exploring; SARSA, on-policy,
learns the safer path and earns more per episode while it keeps exploring.

    python examples/rl_cliff.py [--quick]
"""

import numpy as np
from _common import Timer, cli, pyplot, save  # first: sets thread env vars before numpy loads
from deepkern import rl
from deepkern.demo import path_grid


def main(quick=False, out_dir="examples/out"):
    runs, episodes = (20, 100) if quick else (500, 500)
    env = rl.CliffWalking()
    curves, tables = {}, {}
    with Timer() as t:
        for name, agent in (("SARSA", "sarsa"), ("Q-learning", "q_learning")):
            returns, q = rl.batch_train(
                env, agent, runs, episodes, alpha=0.5, gamma=1.0, epsilon=0.1, seed=1, env_seed=2, return_q=True
            )
            curves[name], tables[name] = returns, q
    print(f"{runs} runs x {episodes} episodes per agent in {t.seconds:.1f} s")
    out = {}
    for name, returns in curves.items():
        last = float(returns[:, -100:].mean())
        # the greedy policy of the run-averaged Q table (one representative table per agent)
        q = tables[name].mean(axis=0)
        policy = np.argmax(q, axis=1)
        states = rl.rollout(env, policy, max_steps=100)
        out[name] = {"mean_last100": last, "path_len": len(states) - 1}
        print(
            f"\n{name}: mean sum of rewards over the last 100 episodes {last:.1f}; "
            f"greedy path (run-averaged Q) {len(states) - 1} steps"
        )
        print(path_grid(env, states))

    plt = pyplot()
    fig = plt.figure(figsize=(14, 8))
    ax = fig.add_subplot(2, 1, 1)
    rl.plot_learning_curves(
        curves, window=10, ax=ax, ylim=(-100, 0), title=f"Cliff walking: mean of {runs} runs, smoothed over 10 episodes"
    )
    skip = list(range(37, 48))  # the cliff and the goal: never occupied, no arrow, no value (blank)

    def v_map(q):
        v = q.mean(axis=0).max(axis=1)
        v[skip] = np.nan
        return v

    for i, (name, q) in enumerate(tables.items()):
        qm = q.mean(axis=0)
        rl.plot_policy(
            np.argmax(qm, axis=1),
            env=env,
            values=v_map(q),
            skip=skip,
            ax=fig.add_subplot(2, 2, 3 + i),
            title=f"{name}: greedy policy on V(s) = max_a Q(s, a)",
        )
    save(fig, out_dir, "rl_cliff.png")
    fig, axes = plt.subplots(1, 2, figsize=(16, 3))
    for ax, (name, q) in zip(axes, tables.items()):
        rl.plot_values(v_map(q), env=env, ax=ax, title=f"{name}: V(s), mean over runs")
    save(fig, out_dir, "rl_cliff_values.png")
    return out


if __name__ == "__main__":
    main(**cli(__doc__))
