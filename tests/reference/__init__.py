"""float64 numpy references: the simplest correct code for every kernel.

One module per op family (DESIGN.md's tests/reference.py, split so families don't collide);
everything is re-exported here: `from reference import max_pool2d_ref`.
"""

from .attention import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .lstm import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .seq import *  # noqa: F401,F403
