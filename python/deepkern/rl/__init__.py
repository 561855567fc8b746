"""Tabular reinforcement learning: grid worlds, Q-learning, SARSA, planning, batch runs, plots.

from deepkern import rl
env = rl.CliffWalking()
agent = rl.SARSA(env.observation_space.n, env.action_space.n, alpha=0.5, gamma=1.0, epsilon=0.1, seed=0)
returns = rl.train(env, agent, episodes=500)
path = rl.rollout(env, agent.greedy_policy(), max_steps=100)
curves = rl.batch_train(env, "sarsa", runs=1000, episodes=500, seed=0)   # (1000, 500)
V, policy = rl.value_iteration(env, gamma=1.0)
"""

from . import book, gym_envs  # noqa: F401
from .agents import SARSA, ExpectedSARSA, QLearning, TabularAgent
from .batch import batch_train
from .envs import CliffWalking, FrozenLake, GridEnv, GridWorld, TabularEnv, WindyGridworld
from .loop import discounted_return, rollout, train
from .model import TabularModel, tabular_model
from .planning import policy_evaluation, policy_iteration, value_iteration
from .plots import plot_learning_curves, plot_policy, plot_values, smooth
from .spaces import Discrete

gym_envs.register()  # deepkern/<Name>-v0 in Gymnasium's registry, when gymnasium is installed

__all__ = [
    "Discrete",
    "TabularEnv",
    "GridEnv",
    "GridWorld",
    "CliffWalking",
    "WindyGridworld",
    "FrozenLake",
    "TabularAgent",
    "QLearning",
    "SARSA",
    "ExpectedSARSA",
    "train",
    "rollout",
    "discounted_return",
    "batch_train",
    "TabularModel",
    "tabular_model",
    "policy_evaluation",
    "value_iteration",
    "policy_iteration",
    "smooth",
    "plot_learning_curves",
    "plot_policy",
    "plot_values",
]
