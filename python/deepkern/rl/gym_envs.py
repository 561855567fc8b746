"""deepkern's environments as real gymnasium.Env classes, registered as "deepkern/<ClassName>-v0".

Importing deepkern.rl calls register() when gymnasium is importable (and does nothing when it is
not), so ``gymnasium.make("deepkern/CliffWalking-v0")`` works after ``import deepkern``, and
``gymnasium.make("deepkern.rl:deepkern/CliffWalking-v0")`` works without it. (Gymnasium 1.x has no
plugin entry points; registration on import is its documented way.) The classes here subclass
deepkern's own and gymnasium.Env: same P, same seeding, same trajectories, Gymnasium's spaces.
"""

from . import envs as _envs

NAMES = ("GridWorld", "CliffWalking", "WindyGridworld", "FrozenLake")


def _gym_class(gym, base):
    """A subclass of deepkern's `base` and gymnasium.Env with gymnasium's Discrete spaces."""

    class GymEnv(base, gym.Env):
        metadata = {"render_modes": ["ansi"], "render_fps": 4}

        def __init__(self, render_mode=None, **kwargs):
            if render_mode not in (None, "ansi"):
                raise ValueError(f"{base.__name__}: 'render_mode' must be None or 'ansi', got {render_mode!r}")
            base.__init__(self, **kwargs)
            self.render_mode = render_mode
            self.observation_space = gym.spaces.Discrete(self.observation_space.n)
            self.action_space = gym.spaces.Discrete(self.action_space.n)

        def reset(self, *, seed=None, options=None):
            # gymnasium.Env.reset seeds self.np_random exactly as deepkern does (default_rng(seed))
            gym.Env.reset(self, seed=seed)
            return base.reset(self, seed=None, options=options)

        def render(self):
            return base.render(self) if self.render_mode == "ansi" else None

    GymEnv.__name__ = GymEnv.__qualname__ = base.__name__
    GymEnv.__module__ = __name__
    GymEnv.__doc__ = f"gymnasium.Env version of deepkern.rl.{base.__name__}.\n\n{base.__doc__ or ''}"
    return GymEnv


def __getattr__(name):
    if name in NAMES:
        import gymnasium as gym

        cls = _gym_class(gym, getattr(_envs, name))
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register():
    """Register every deepkern environment with Gymnasium; returns the ids (empty without gymnasium)."""
    try:
        import gymnasium as gym
    except ImportError:
        return []
    ids = []
    for name in NAMES:
        env_id = f"deepkern/{name}-v0"
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=f"{__name__}:{name}")
        ids.append(env_id)
    return ids
