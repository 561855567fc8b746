"""Sequential: a stack of layers with forward/backward, summary, fit/evaluate/predict, npz
save/load and loading of PyTorch state_dicts."""

import json

import numpy as np

from .._backend import get_array_module, is_cupy_array
from ._base import Layer, to_numpy, where_is
from .training import batched_predict
from .training import evaluate as _evaluate
from .training import fit as _fit


class Sequential(Layer):
    """Sequential([layer, ...]) (or Sequential(layer, layer, ...)); input_shape (without the batch
    dimension) is optional and only used by summary()."""

    _grad_ready_hook = None  # set by distributed.DataParallel around a backward: hook(i) after layer i

    def __init__(self, layers=(), *more, input_shape=None):
        if isinstance(layers, Layer):
            layers = [layers, *more]
        else:
            layers = list(layers) + list(more)
        for i, l in enumerate(layers):
            if not isinstance(l, Layer):
                raise TypeError(f"Sequential: layer {i} is a {type(l).__name__}, expected a deepkern.nn.Layer")
        self.layers = layers
        self.input_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        self._shapes = None
        self.history = None

    def add(self, layer):
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a deepkern.nn.Layer, got {type(layer).__name__}")
        self.layers.append(layer)

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __iter__(self):
        return iter(self.layers)

    # -- forward / backward -------------------------------------------------------------------
    def check_input(self, x, name="x"):
        p = next((q for layer in self.layers for q in [layer._first_param()] if q is not None), None)
        if p is not None and is_cupy_array(x) != is_cupy_array(p.value):
            raise TypeError(
                f"Sequential: '{name}' is {where_is(x)} but the model's parameters are "
                f"{where_is(p.value)}; call model.to('cuda') / model.to('cpu') or move the data"
            )

    def zero_grad(self):
        for layer in self.layers:
            layer.zero_grad()

    def forward(self, x, training=None):
        """training=None: each layer in its own mode (train()/eval()); True/False: every layer so."""
        self.check_input(x)
        shapes = []
        for layer in self.layers:
            x = layer.forward(x, training=layer._mode(training))
            # a layer may return a tuple (e.g. an RNN with return_state): record the first array
            first = x[0] if isinstance(x, tuple) else x
            shapes.append(tuple(first.shape[1:]))
        self._shapes = shapes
        return x

    def backward(self, dy, input_grad=True):
        """Backward through every layer; returns the gradient of the model's input. With
        input_grad=False (train_step, fit) the first layer may skip computing it (Conv2D and Dense
        do) and None may be returned."""
        hook = self._grad_ready_hook  # distributed.DataParallel: starts reducing finished gradients
        for i in range(len(self.layers) - 1, -1, -1):
            if dy is None:
                break  # a non-differentiable input (Embedding/OneHot) ends the chain
            layer = self.layers[i]
            if i == 0 and not input_grad and type(layer).__dict__.get("_input_grad_skippable", False):
                layer._input_grad_unused = True
                try:
                    dy = layer.backward(dy)
                finally:
                    del layer._input_grad_unused
            else:
                dy = layer.backward(dy)
            if hook is not None:
                hook(i)
        return dy

    def _backward_for_training(self, dy):
        """backward when nothing uses the input's gradient (train_step, fit). A subclass that
        overrides backward(dy) is called as before, without the input_grad argument."""
        if type(self).backward is Sequential.backward:
            return self.backward(dy, input_grad=False)
        return self.backward(dy)

    def named_buffers(self, prefix=""):
        return [pair for i, layer in enumerate(self.layers) for pair in layer.named_buffers(f"{prefix}{i}.")]

    def named_parameters(self, prefix=""):
        out, seen = [], set()
        for i, layer in enumerate(self.layers):
            for n, p in layer.named_parameters(f"{prefix}{i}."):
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append((n, p))
        return out

    def _children(self):
        return list(self.layers)

    # -- training -----------------------------------------------------------------------------
    def fit(
        self,
        x,
        y,
        loss,
        optimizer,
        epochs=1,
        batch_size=32,
        validation_data=None,
        validation_split=0.0,
        early_stopping=None,
        progress="auto",
        shuffle=True,
        seed=None,
        scheduler=None,
        clip_norm=None,
        check_finite=False,
        stop_on_nonfinite=True,
        distributed=False,
        checkpoint=None,
    ):
        """Mini-batch training; returns (and keeps in .history) a dict of per-epoch lists:
        'loss' and, with validation, 'val_loss'; 'accuracy'/'val_accuracy' when the loss is a
        classification loss (SoftmaxCrossEntropy, BinaryCrossEntropy); 'lr' with a scheduler.

        loss: a Loss (or 'cross_entropy', 'mse', 'bce'); optimizer: a deepkern.optim optimizer (or
        'sgd', 'adam', 'rmsprop', 'adagrad', 'adadelta' with their default settings).
        validation_split takes the LAST fraction of (x, y), before shuffling (Keras' rule).
        Shuffling each epoch uses np.random.default_rng(seed). early_stopping: an EarlyStopping;
        it watches its `monitor` ('val_loss' by default, 'loss' when there is no validation data)
        and restores the best parameters at the end when restore_best. scheduler.step() runs after
        every epoch. clip_norm: clip the global gradient norm before each step.
        progress: 'auto' (default) prints one line per epoch and draws a tqdm bar only when stderr is
        a terminal; True always draws the bar (when tqdm is installed); False prints nothing.
        stop_on_nonfinite (default True): raise FloatingPointError naming the epoch and batch as soon
        as the loss is NaN or inf. check_finite=True: refuse NaN/inf in x, y (and the validation data)
        before training, with a ValueError naming the array and the first bad sample.

        distributed=True: data-parallel over the ranks of an MPI launch (deepkern.distributed):
        every rank passes the same x, y and arguments; batch_size stays the global batch, each rank
        computes its share of every batch, and N ranks take the steps one process takes (same
        parameters to float rounding; Dropout draws differ). Progress and checkpoints on rank 0.
        checkpoint: a path written (distributed.save_checkpoint: model and optimizer state) after
        every epoch."""
        self.history = _fit(
            self,
            x,
            y,
            loss,
            optimizer,
            epochs,
            batch_size,
            validation_data,
            validation_split,
            early_stopping,
            progress,
            shuffle,
            seed,
            scheduler,
            clip_norm,
            check_finite=check_finite,
            stop_on_nonfinite=stop_on_nonfinite,
            distributed=distributed,
            checkpoint=checkpoint,
        )
        return self.history

    def evaluate(self, x, y, loss, batch_size=256, distributed=False):
        """{'loss': mean loss, 'accuracy': ... (classification)} in inference mode. distributed=True:
        each rank evaluates its share of x and the result (the same on every rank) covers all of x."""
        return _evaluate(self, x, y, loss, batch_size, distributed)

    def predict(self, x, batch_size=None):
        """Forward in inference mode (Dropout off), in batches of batch_size when given."""
        return batched_predict(self, x, batch_size)

    def train_step(self, x, y, loss, optimizer):
        """One step: zero grads, forward, loss, backward, optimizer.step(); returns the loss."""
        self.zero_grad()
        out = self.forward(x, training=True)
        value = loss.forward(out, y)
        self._backward_for_training(loss.backward())
        optimizer.step()
        return value

    # -- summary --------------------------------------------------------------------------------
    def _infer_shapes(self, input_shape):
        shapes, shape = [], tuple(input_shape)
        for layer in self.layers:
            shape = layer.output_shape(shape)
            if shape is None:
                break
            shapes.append(tuple(shape))
        if len(shapes) == len(self.layers):
            return shapes
        # some layer cannot tell without running: one inference forward on a batch of one zero input
        ps = self.parameters()
        xp = get_array_module(ps[0].value) if ps else np
        x = xp.zeros((1,) + tuple(input_shape), dtype=self.dtype)
        out = []
        for layer in self.layers:
            x = layer.forward(x, training=False)
            first = x[0] if isinstance(x, tuple) else x
            out.append(tuple(first.shape[1:]))
        return out

    def summary(self, input_shape=None, print_fn=print):
        """Print (and return) a table of layers, output shapes (None = batch) and parameter counts.
        Shapes come from input_shape (or the constructor's), else from the last forward pass."""
        input_shape = input_shape if input_shape is not None else self.input_shape
        if input_shape is not None:
            shapes = self._infer_shapes(input_shape)
        else:
            shapes = self._shapes if self._shapes is not None and len(self._shapes) == len(self.layers) else None
        rows = [("#", "Layer", "Output shape", "Params")]
        for i, layer in enumerate(self.layers):
            shp = "?" if shapes is None else str((None,) + tuple(shapes[i]))
            rows.append((str(i), repr(layer), shp, f"{layer.num_params():,}"))
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        line = "-" * (sum(widths) + 6)
        fmt = lambda r: f"{r[0]:>{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]:>{widths[3]}}"  # noqa: E731
        total = self.num_params()
        text = "\n".join(
            [
                fmt(rows[0]),
                line,
                *[fmt(r) for r in rows[1:]],
                line,
                f"Total params: {total:,}",
                f"Trainable params: {total:,}",
            ]
        )
        if print_fn is not None:
            print_fn(text)
        return text

    # -- serialisation --------------------------------------------------------------------------
    def get_config(self):
        return {
            "class": "Sequential",
            "args": [],
            "kwargs": {"input_shape": list(self.input_shape) if self.input_shape else None},
            "layers": [layer.get_config() for layer in self.layers],
        }

    def save(self, path):
        """npz with the architecture (JSON of each layer's constructor arguments) and every parameter."""
        arrays = {n: to_numpy(p.value) for n, p in self.named_parameters()}
        arrays.update({"__buffer__." + n: to_numpy(b) for n, b in self.named_buffers()})
        arrays["__config__"] = np.array(json.dumps(self.get_config()))
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path):
        """Rebuild a model saved with save(): same layers, same parameter values and dtypes (CPU)."""
        with np.load(path, allow_pickle=False) as f:
            if "__config__" not in f.files:
                raise ValueError(f"Sequential.load: {path!r} was not written by Sequential.save (no __config__)")
            model = Layer.from_config(json.loads(str(f["__config__"])))
            for n, p in model.named_parameters():
                if n not in f.files:
                    raise ValueError(f"Sequential.load: parameter {n!r} missing from {path!r}")
                a = f[n]
                if a.shape != p.value.shape:
                    raise ValueError(f"Sequential.load: parameter {n!r} has shape {a.shape}, expected {p.value.shape}")
                p.value = np.array(a)
            for n, b in model.named_buffers():  # running statistics (BatchNorm2D); older files have none
                key = "__buffer__." + n
                if key in f.files:
                    _set_buffer(model, n, np.array(f[key], dtype=b.dtype))
        return model

    def state_dict(self):
        """Every layer's state_dict() under its index ("0.weight", "3.running_mean", ...): what a
        torch.nn.Sequential of the twin modules, in the same order, loads."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.state_dict().items()}

    def load_state_dict(self, state):
        """Load state_dict()'s output or a torch.nn.Sequential's state_dict of the twin modules: keys
        "<index>.<name>" go to layer <index>'s load_state_dict."""
        if not hasattr(state, "keys"):
            raise TypeError(f"Sequential.load_state_dict: 'state' must be a dict of arrays, got {type(state).__name__}")
        parts = [{} for _ in self.layers]
        for k, v in state.items():
            head, _, rest = str(k).partition(".")
            if not head.isdigit() or int(head) >= len(self.layers) or not rest:
                raise ValueError(
                    f"Sequential.load_state_dict: unexpected key {k!r}; expected '<layer index>.<name>' "
                    f"with an index below {len(self.layers)}"
                )
            parts[int(head)][rest] = v
        for i, (layer, sub) in enumerate(zip(self.layers, parts)):
            try:
                layer.load_state_dict(sub)
            except ValueError as e:
                raise ValueError(f"Sequential.load_state_dict: layer {i}: {e}") from None

    def load_torch_state_dict(self, state_dict, prefixes=None):
        """Copy a PyTorch state_dict into this model. PyTorch's module prefixes ('0', '3', 'fc1',
        ...) are taken in order of appearance and paired with this model's layers that have
        parameters, in order (or give `prefixes`, one per such layer). Each layer's
        load_torch_state(prefix, state) does the copy (LSTM sums b_ih + b_hh)."""
        state = {k: to_numpy(v) for k, v in state_dict.items()}
        if prefixes is None:
            prefixes = []
            for k in state:
                pre = k.rsplit(".", 1)[0] if "." in k else ""
                if pre not in prefixes:
                    prefixes.append(pre)
        targets = [layer for layer in self.layers if layer.parameters()]
        if len(prefixes) != len(targets):
            raise ValueError(
                f"load_torch_state_dict: the state_dict has {len(prefixes)} modules with weights {prefixes} but the "
                f"model has {len(targets)} layers with parameters {[type(t).__name__ for t in targets]}; pass prefixes="
            )
        for pre, layer in zip(prefixes, targets):
            try:
                layer.load_torch_state(pre, state)
            except KeyError as e:
                raise ValueError(
                    f"load_torch_state_dict: {type(layer).__name__} expects key {e} in the state_dict"
                ) from None

    def load_torch_state(self, prefix, state):
        sub = {k[len(prefix) + 1 :]: v for k, v in state.items() if k.startswith(prefix + ".")}
        self.load_torch_state_dict(sub)

    def __repr__(self):
        return f"Sequential({len(self.layers)} layers)"


def _set_buffer(model, dotted, value):
    """model's buffer at 'layers-index.attr...name' (as named_buffers() names it) = value."""
    *path, name = dotted.split(".")
    obj = model
    for part in path:
        obj = (
            obj.layers[int(part)]
            if isinstance(obj, Sequential) and part.isdigit()
            else (obj[int(part)] if part.isdigit() else getattr(obj, part))
        )
    setattr(obj, name, value)
