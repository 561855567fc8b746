"""Parameter and Layer: the two types every layer in deepkern.nn is built from.

The contract every layer keeps (other modules, Sequential, the optimizers and save/load rely on it):

- ``forward(x, training=True)`` -> y, and ``backward(dy)`` -> dx. backward *accumulates* into its
  parameters' ``.grad`` (so gradients of a weight used at several time steps add up); the caller
  clears them with ``zero_grad()`` / ``optimizer.zero_grad()``. A layer whose input is not
  differentiable (Embedding, OneHot) returns None from backward.
- ``parameters()`` finds Parameters by walking the layer's attributes in definition order: a
  Parameter, a Layer (its parameters, recursively) or a list/tuple of those. Composite layers need
  no code for it. ``named_parameters()`` gives the same list with dotted names (used by save/load).
- Constructor arguments are recorded automatically (``Layer.__new__``), so ``get_config()`` and
  ``Sequential.load`` work for any layer whose constructor takes JSON-able arguments (ints, floats,
  strings, bools, None, lists/tuples of those). Layers register by class name when defined.
- Device: ``to("cuda")`` / ``to("cpu")`` moves every Parameter (and the arrays named in the class
  attribute ``_buffers``) between numpy and cupy. ``check_input(x)`` raises a TypeError when x lives
  on the other device than the layer's parameters.
- dtype: parameters are float32 unless the layer is given ``dtype=`` or converted with ``astype``;
  layers compute in their parameters' dtype (float64 models are what the gradient checks use).
- PyTorch weights, both ways: ``state_dict()`` / ``load_state_dict(state)`` use the PyTorch twin's
  names and layouts for every layer that has a twin (it defines ``torch_state_dict()``, the export,
  beside ``load_torch_state``, the import). ``load_torch_state(prefix, state)`` copies ``state[prefix + "." + name]`` (numpy
  arrays, PyTorch's names and layouts) into the layer's Parameters; the default raises
  NotImplementedError for a layer that has parameters and returns quietly for one that has none.
  ``Sequential.load_torch_state_dict`` pairs PyTorch's module prefixes, in order, with the
  model's layers that have parameters and calls this on each. Use ``Parameter.assign(array, what)``
  to copy: it checks the shape and keeps the Parameter's dtype and device.
- Mode: ``train()`` / ``eval()`` set ``.training`` on the layer and every layer inside it (True
  by default). ``training=None`` in ``layer(x)``, ``Sequential.forward``, Dropout, BatchNorm2D and
  the composite layers means "the layer's mode"; an explicit ``training=True/False`` wins over the
  mode. training=False also means inference: nothing is kept for backward.
- Shapes for ``summary()``: ``output_shape(input_shape)`` (without the batch dimension) may be
  overridden; the default returns None and Sequential then learns the shapes from a forward pass.
"""

import numbers

import numpy as np

from .._backend import get_array_module, is_cupy_array

_LAYER_REGISTRY = {}

_GLOBAL_RNG = np.random.default_rng()


def manual_seed(seed):
    """Seed the generator that layers use for initialisation (and Dropout) when given no seed."""
    global _GLOBAL_RNG
    _GLOBAL_RNG = np.random.default_rng(seed)


def default_rng(seed=None):
    """The generator a layer uses: its own when seeded, else the module-wide one (manual_seed)."""
    return _GLOBAL_RNG if seed is None else np.random.default_rng(seed)


def xp_of(x):
    return get_array_module(x)


def device_of_array(a):
    return "cuda" if is_cupy_array(a) else "cpu"


def where_is(a):
    """How device-mismatch errors name an array's place: 'a cupy array (GPU)' / 'a numpy array (CPU)'."""
    return "a cupy array (GPU)" if is_cupy_array(a) else "a numpy array (CPU)"


def _to_device(a, device):
    if a is None:
        return None
    if device == "cpu":
        return a.get() if is_cupy_array(a) else a
    try:
        import cupy
    except Exception as e:  # pragma: no cover - depends on the machine
        raise RuntimeError(f"to('cuda'): cupy is not importable ({e}); install cupy and a CUDA driver") from None
    return cupy.asarray(a)


def normalize_device(device):
    d = str(device).lower()
    if d.startswith("cuda") or d == "gpu":
        return "cuda"
    if d == "cpu":
        return "cpu"
    raise ValueError(f"to: 'device' must be 'cpu' or 'cuda', got {device!r}")


def to_numpy(a):
    """numpy copy of a numpy/cupy array or a torch tensor (duck-typed; torch is never imported)."""
    if hasattr(a, "detach"):
        return a.detach().cpu().numpy()
    if is_cupy_array(a):
        return a.get()
    return np.asarray(a)


def torch_key(prefix, name):
    """PyTorch's state_dict key of `name` inside the module at `prefix` ('' = the top)."""
    return f"{prefix}.{name}" if prefix else name


def export_arrays(**arrays):
    """{name: numpy copy} of the given Parameters / arrays, skipping None (for torch_state_dict)."""
    return {k: to_numpy(v.value if isinstance(v, Parameter) else v).copy() for k, v in arrays.items() if v is not None}


class Parameter:
    """A trainable array and its gradient. Layers accumulate into `.grad` in backward();
    optimizers read `.grad` and update `.value` in place."""

    def __init__(self, value, name=""):
        self.value = value
        self.grad = None
        self.name = name

    @property
    def shape(self):
        return self.value.shape

    @property
    def dtype(self):
        return self.value.dtype

    @property
    def size(self):
        return int(self.value.size)

    @property
    def device(self):
        return device_of_array(self.value)

    def accumulate(self, g):
        if self.grad is None:
            self.grad = g.copy()
        else:
            self.grad += g

    def zero_grad(self):
        self.grad = None

    def assign(self, array, what="parameter"):
        """Copy `array` (numpy, cupy or torch tensor) into .value in place: same shape required;
        the dtype and device of .value are kept."""
        # a cupy source stays on the GPU only for a GPU parameter; anything else goes through the host
        a = array if is_cupy_array(array) and is_cupy_array(self.value) else to_numpy(array)
        if tuple(a.shape) != tuple(self.value.shape):
            raise ValueError(f"{what}: got shape {tuple(a.shape)}, expected {tuple(self.value.shape)}")
        xp = get_array_module(self.value)
        self.value[...] = xp.asarray(a, dtype=self.value.dtype)

    def __repr__(self):
        return f"Parameter({self.name or '?'}, shape={tuple(self.value.shape)}, dtype={self.value.dtype})"


# attribute types that hold no Parameter: zero_grad (every training step) skips them unexamined
_NO_PARAMS = frozenset((int, float, str, bool, type(None), np.ndarray, np.dtype))


def _clear_grads(v):
    if isinstance(v, Parameter):
        v.grad = None
    elif isinstance(v, Layer):
        v.zero_grad()
    elif isinstance(v, (list, tuple)):
        for e in v:
            if type(e) not in _NO_PARAMS:
                _clear_grads(e)


def _jsonable(v):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        return float(v)
    if isinstance(v, (list, tuple)):
        return [_jsonable(e) for e in v]
    if isinstance(v, type) and issubclass(v, np.generic) or isinstance(v, np.dtype):
        return np.dtype(v).name
    raise TypeError(f"cannot serialise constructor argument {v!r} of type {type(v).__name__}")


class Layer:
    """Base class: forward(x, training=True) -> y; backward(dy) -> dx (accumulating parameter
    grads); parameters() -> list of Parameter; num_params(). See the module docstring."""

    _buffers = ()  # names of non-trainable array attributes that move with to()
    # Set by Sequential around the first layer's backward when nothing uses the gradient of the
    # model's input (train_step, fit), but only on a class that declares _input_grad_skippable
    # itself (Conv2D, Dense): its backward then skips dx and returns None. A subclass does not
    # inherit the declaration, since its own backward may use what super().backward() returns.
    _input_grad_unused = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        old = _LAYER_REGISTRY.get(cls.__name__)
        # a user's class never shadows deepkern's own layer of the same name (Sequential.load)
        if old is None or not old.__module__.startswith("deepkern.") or cls.__module__.startswith("deepkern."):
            _LAYER_REGISTRY[cls.__name__] = cls

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        obj._init_args = (args, dict(kwargs))
        return obj

    # -- the contract -----------------------------------------------------------------------
    def forward(self, x, training=True):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def __call__(self, x, training=None):
        return self.forward(x, training=self._mode(training))

    # -- train / eval mode ------------------------------------------------------------------
    training = True

    def train(self, mode=True):
        """Set training mode (Dropout drops, BatchNorm2D uses batch statistics) on this layer and
        every layer inside it; returns self. An explicit forward(..., training=) still wins."""
        self.training = bool(mode)
        for c in self._children():
            c.train(mode)
        return self

    def eval(self):
        """train(False): inference mode for this layer and every layer inside it; returns self."""
        return self.train(False)

    def _mode(self, training):
        """The effective training flag: an explicit argument wins, None means the layer's mode."""
        return self.training if training is None else bool(training)

    # -- parameters -------------------------------------------------------------------------
    def named_parameters(self, prefix=""):
        out = []
        seen = set()

        def visit(name, v):
            if isinstance(v, Parameter):
                if id(v) not in seen:
                    seen.add(id(v))
                    out.append((name, v))
            elif isinstance(v, Layer):
                for n, p in v.named_parameters(name + "."):
                    if id(p) not in seen:
                        seen.add(id(p))
                        out.append((n, p))
            elif isinstance(v, (list, tuple)):
                for i, e in enumerate(v):
                    visit(f"{name}.{i}", e)

        for k, v in self.__dict__.items():
            if not k.startswith("_init"):
                visit(prefix + k, v)
        return out

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix=""):
        """[(dotted name, array)] of the non-trainable arrays (``_buffers``, e.g. BatchNorm2D's running
        statistics) of this layer and every layer inside it; None entries are skipped."""
        out = [(prefix + n, getattr(self, n)) for n in self._buffers if getattr(self, n, None) is not None]
        for k, v in self.__dict__.items():
            if k.startswith("_init"):
                continue
            if isinstance(v, Layer):
                out.extend(v.named_buffers(f"{prefix}{k}."))
            elif isinstance(v, (list, tuple)):
                for i, e in enumerate(v):
                    if isinstance(e, Layer):
                        out.extend(e.named_buffers(f"{prefix}{k}.{i}."))
        return out

    def num_params(self):
        return sum(p.size for p in self.parameters())

    def zero_grad(self):
        # walks attributes directly (this runs every training step; parameters() builds names)
        for k, v in self.__dict__.items():
            if type(v) not in _NO_PARAMS and not k.startswith("_init"):
                _clear_grads(v)

    def torch_state_dict(self):
        """The state_dict of this layer's PyTorch twin ({PyTorch name: numpy array}, PyTorch's
        layouts, buffers included), or None for a layer without a twin (the default)."""
        return None

    def state_dict(self):
        """{name: numpy array} (copies, on the CPU). A layer with a PyTorch twin uses PyTorch's names
        and layouts, so ``twin.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})``
        loads it; any other layer uses its dotted parameter names."""
        t = self.torch_state_dict()
        if t is not None:
            return t
        return {n: to_numpy(p.value).copy() for n, p in self.named_parameters()}

    def load_state_dict(self, state):
        """Load what state_dict() gives, or a PyTorch twin's state_dict (torch tensors or arrays;
        "num_batches_tracked" may be absent), or a dict under this layer's own parameter names."""
        where = f"{type(self).__name__}.load_state_dict"
        if not hasattr(state, "keys"):
            raise TypeError(f"{where}: 'state' must be a dict of arrays, got {type(state).__name__}")
        params = dict(self.named_parameters())
        keys = set(state)
        twin = self.torch_state_dict()
        if twin is not None and not (keys == set(params) and keys != set(twin)):
            optional = {k for k in twin if k.split(".")[-1] == "num_batches_tracked"}
            missing = sorted(set(twin) - keys - optional)
            extra = sorted(keys - set(twin))
            if missing or extra:
                raise ValueError(
                    f"{where}: missing {missing}, unexpected {extra} (expected the keys of "
                    f"{type(self).__name__}'s PyTorch twin: {sorted(twin)})"
                )
            self.load_torch_state("", {k: to_numpy(v) for k, v in state.items()})
            return
        missing = [n for n in params if n not in state]
        extra = [n for n in state if n not in params]
        if missing or extra:
            raise ValueError(f"{where}: missing {missing}, unexpected {extra}")
        for n, p in params.items():
            p.assign(state[n], what=f"{where}: '{n}'")

    # -- device and dtype -------------------------------------------------------------------
    @property
    def device(self):
        ps = self.parameters()
        return ps[0].device if ps else getattr(self, "_device", "cpu")

    def _children(self):
        out = []
        for k, v in self.__dict__.items():
            if k.startswith("_init"):
                continue
            if isinstance(v, Layer):
                out.append(v)
            elif isinstance(v, (list, tuple)):
                out.extend(e for e in v if isinstance(e, Layer))
        return out

    def to(self, device):
        """Move parameters (and buffers) to 'cpu' (numpy) or 'cuda' (cupy). Returns self."""
        device = normalize_device(device)
        for p in self.parameters():
            p.value = _to_device(p.value, device)
            p.grad = _to_device(p.grad, device)
        self._move_own(device)
        return self

    def _move_own(self, device):
        for name in self._buffers:
            setattr(self, name, _to_device(getattr(self, name), device))
        self._device = device
        for c in self._children():
            c._move_own(device)

    def astype(self, dtype):
        """Convert every parameter (and its grad) to `dtype` (e.g. np.float64 for gradient checks)."""
        for p in self.parameters():
            p.value = p.value.astype(dtype)
            if p.grad is not None:
                p.grad = p.grad.astype(dtype)
        self._set_dtype(np.dtype(dtype))
        return self

    def _set_dtype(self, dtype):
        self._dtype = dtype
        for c in self._children():
            c._set_dtype(dtype)

    @property
    def dtype(self):
        ps = self.parameters()
        return ps[0].dtype if ps else getattr(self, "_dtype", np.dtype(np.float32))

    def _first_param(self):
        for v in self.__dict__.values():
            if isinstance(v, Parameter):
                return v
        ps = self.parameters()
        return ps[0] if ps else None

    def check_input(self, x, name="x"):
        """TypeError when x lives on another device than this layer's parameters."""
        p = self._first_param()
        if p is None:
            return
        if is_cupy_array(x) != is_cupy_array(p.value):
            raise TypeError(
                f"{type(self).__name__}.forward: '{name}' is {where_is(x)} but the layer's parameters are "
                f"{where_is(p.value)}; move the model with .to('cuda'/'cpu') or pass arrays on the same device"
            )

    # -- serialisation ----------------------------------------------------------------------
    def get_config(self):
        args, kwargs = self._init_args
        return {
            "class": type(self).__name__,
            "args": _jsonable(list(args)),
            "kwargs": {k: _jsonable(v) for k, v in kwargs.items()},
        }

    @staticmethod
    def from_config(config):
        cls = _LAYER_REGISTRY.get(config["class"])
        if cls is None:
            raise ValueError(f"load: unknown layer class {config['class']!r} (import the module that defines it first)")
        if "layers" in config:  # containers (Sequential) rebuild their children first
            return cls([Layer.from_config(c) for c in config["layers"]], *config["args"], **config["kwargs"])
        return cls(*config["args"], **config["kwargs"])

    def load_torch_state(self, prefix, state):
        """Copy PyTorch weights state[prefix + '.' + name] into this layer (see module docstring)."""
        if self.parameters():
            raise NotImplementedError(f"{type(self).__name__} does not implement load_torch_state")

    # -- shapes -----------------------------------------------------------------------------
    def output_shape(self, input_shape):
        """Output shape without the batch dimension, or None when not known without a forward."""
        return None

    def __repr__(self):
        args, kwargs = self._init_args
        show = lambda v: v.__name__ if isinstance(v, type) else repr(v)  # noqa: E731
        parts = [show(a) for a in args] + [f"{k}={show(v)}" for k, v in kwargs.items()]
        return f"{type(self).__name__}({', '.join(parts)})"
