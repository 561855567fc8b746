"""deepkern's environments registered in Gymnasium: make, check_env without warnings, same
trajectories as deepkern's own classes, and deepkern.rl still working without gymnasium."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from deepkern import rl

gym = pytest.importorskip("gymnasium")
from gymnasium.utils.env_checker import check_env  # noqa: E402

NAMES = ["GridWorld", "CliffWalking", "WindyGridworld", "FrozenLake"]


def test_every_deepkern_env_is_registered():
    assert sorted(rl.gym_envs.register()) == sorted(f"deepkern/{n}-v0" for n in NAMES)
    for n in NAMES:
        assert f"deepkern/{n}-v0" in gym.registry


@pytest.mark.parametrize("name", NAMES)
def test_check_env_passes_without_warnings(name):
    env = gym.make(f"deepkern/{name}-v0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
        obs, info = env.reset(seed=0)
        env.step(env.action_space.sample())
    assert isinstance(env.unwrapped, gym.Env)
    assert isinstance(env.unwrapped, getattr(rl, name))
    assert env.observation_space == gym.spaces.Discrete(getattr(rl, name)().observation_space.n)


@pytest.mark.parametrize(
    "name,kw",
    [
        ("CliffWalking", {}),
        ("CliffWalking", {"is_slippery": True}),
        ("FrozenLake", {"map_name": "8x8"}),
        ("WindyGridworld", {}),
        ("GridWorld", {"shape": (3, 5), "slip": 0.2}),
    ],
)
def test_same_trajectory_as_deepkern_env(name, kw):
    g = gym.make(f"deepkern/{name}-v0", **kw)
    ours = getattr(rl, name)(**kw)
    rng = np.random.default_rng(5)
    for seed in (0, 11):
        a, b = g.reset(seed=seed)[0], ours.reset(seed=seed)[0]
        assert a == b
        for _ in range(60):
            act = int(rng.integers(ours.action_space.n))
            ra, rb = g.step(act), ours.step(act)
            assert ra[:4] == rb[:4]
            if ra[2] or ra[3]:
                assert g.reset()[0] == ours.reset()[0]


def test_make_with_module_prefix_and_rl_train():
    env = gym.make("deepkern.rl:deepkern/CliffWalking-v0", max_episode_steps=50)
    agent = rl.QLearning(48, 4, alpha=0.5, gamma=1.0, epsilon=0.1, seed=0)
    returns = rl.train(env, agent, episodes=5)
    assert returns.shape == (5,) and np.isfinite(returns).all()


def test_ansi_render_and_bad_render_mode():
    env = gym.make("deepkern/CliffWalking-v0", render_mode="ansi")
    env.reset(seed=0)
    assert "x" in env.render()
    with pytest.raises(ValueError, match="render_mode"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium's own warning about the unknown mode comes first
        gym.make("deepkern/CliffWalking-v0", render_mode="human")


def test_deepkern_envs_work_without_gymnasium():
    code = (
        "import sys; sys.modules['gymnasium'] = None\n"
        "from deepkern import rl\n"
        "assert rl.gym_envs.register() == []\n"
        "e = rl.CliffWalking(); s, _ = e.reset(seed=0); assert s == 36\n"
        "assert e.step(1)[1] == -100.0\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
