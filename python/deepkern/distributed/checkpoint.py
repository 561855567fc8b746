"""Checkpoints that do not depend on the number of ranks: parameters and optimizer state are the
same on every rank in data-parallel training, so rank 0 writes one file and any number of ranks
(or a single process) can resume from it."""

import json
import os

import numpy as np

from .._backend import get_array_module
from ..nn._base import to_numpy
from . import _runtime


def _optimizer_arrays(optimizer):
    out = {
        "__optim__": np.array(
            json.dumps(
                {
                    "class": type(optimizer).__name__,
                    "lr": float(optimizer.lr),
                    "step_count": int(getattr(optimizer, "step_count", 0)),
                    "n_params": len(optimizer.params),
                }
            )
        )
    }
    for i, st in enumerate(optimizer.state):
        for k, v in st.items():
            out[f"__optim__/{i}/{k}"] = to_numpy(v) if hasattr(v, "shape") else np.array(v)
    return out


def save_checkpoint(path, model, optimizer=None, **meta):
    """Write the model's parameters (Sequential.save's format, so Sequential.load reads it too), the
    optimizer's state and `meta` (JSON-able) to the npz `path`. Under distributed training every
    rank calls it; rank 0 writes, and every rank returns once the file is complete."""
    if _runtime.rank() == 0:
        arrays = {n: to_numpy(p.value) for n, p in model.named_parameters()}
        if hasattr(model, "get_config"):
            arrays["__config__"] = np.array(json.dumps(model.get_config()))
        if optimizer is not None:
            arrays.update(_optimizer_arrays(optimizer))
        arrays["__meta__"] = np.array(json.dumps(meta))
        tmp = f"{path}.tmp-{os.getpid()}.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, path)  # a crash while writing never leaves a half checkpoint under `path`
    if _runtime.is_initialized() and _runtime.world_size() > 1:
        _runtime.barrier()


def load_checkpoint(path, model, optimizer=None):
    """Load a save_checkpoint file into `model` (and `optimizer`) on this rank -> the saved meta dict.
    Every rank reads the file itself, so a checkpoint written by N ranks resumes on any M."""
    with np.load(path, allow_pickle=False) as f:
        if optimizer is not None:  # checked before anything is changed
            if "__optim__" not in f.files:
                raise ValueError(f"load_checkpoint: {path!r} holds no optimizer state (saved without an optimizer)")
            info = json.loads(str(f["__optim__"]))
            if info["class"] != type(optimizer).__name__ or info["n_params"] != len(optimizer.params):
                raise ValueError(
                    f"load_checkpoint: {path!r} holds the state of a {info['class']} over "
                    f"{info['n_params']} parameters, not of this {type(optimizer).__name__} over "
                    f"{len(optimizer.params)}"
                )
        state = {n: f[n] for n in f.files if not n.startswith("__")}
        model.load_state_dict(state)
        if optimizer is not None:
            optimizer.lr, optimizer.step_count = info["lr"], info["step_count"]
            states = [dict() for _ in optimizer.params]
            for n in f.files:
                if n.startswith("__optim__/"):
                    _, i, k = n.split("/", 2)
                    v, p = f[n], optimizer.params[int(i)]
                    if v.ndim == 0:  # step counters and other scalars
                        states[int(i)][k] = v.item()
                    else:
                        states[int(i)][k] = get_array_module(p.value).asarray(v)
            optimizer.state = states
        return json.loads(str(f["__meta__"])) if "__meta__" in f.files else {}
