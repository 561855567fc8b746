"""The training loop behind Sequential.fit / evaluate / predict (kept apart from the container)."""

import math
import sys

import numpy as np

from .._backend import get_array_module, is_cupy_array
from ._base import where_is
from .losses import MSE, BinaryCrossEntropy, Loss, SoftmaxCrossEntropy

_LOSSES = {
    "cross_entropy": SoftmaxCrossEntropy,
    "softmax_cross_entropy": SoftmaxCrossEntropy,
    "categorical_crossentropy": SoftmaxCrossEntropy,
    "mse": MSE,
    "bce": BinaryCrossEntropy,
    "binary_cross_entropy": BinaryCrossEntropy,
    "binary_crossentropy": BinaryCrossEntropy,
}


def resolve_loss(loss):
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, type) and issubclass(loss, Loss):
        return loss()
    if isinstance(loss, str) and loss.lower() in _LOSSES:
        return _LOSSES[loss.lower()]()
    if hasattr(loss, "forward") and hasattr(loss, "backward"):
        return loss
    raise ValueError(f"fit: 'loss' must be a deepkern.nn loss or one of {sorted(_LOSSES)}, got {loss!r}")


def resolve_optimizer(optimizer, model):
    from .. import optim

    names = {
        "sgd": optim.SGD,
        "adam": optim.Adam,
        "adamw": optim.AdamW,
        "rmsprop": optim.RMSProp,
        "adagrad": optim.Adagrad,
        "adadelta": optim.Adadelta,
    }
    if isinstance(optimizer, str):
        if optimizer.lower() not in names:
            raise ValueError(f"fit: 'optimizer' must be an optimizer or one of {sorted(names)}, got {optimizer!r}")
        return names[optimizer.lower()](model.parameters())
    if not (hasattr(optimizer, "step") and hasattr(optimizer, "zero_grad")):
        raise TypeError(f"fit: 'optimizer' must be a deepkern.optim optimizer, got {type(optimizer).__name__}")
    return optimizer


def _correct(loss, out, y):
    """Number of correct predictions for classification losses, else None."""
    if isinstance(loss, SoftmaxCrossEntropy):
        pred = out.argmax(axis=-1)
        labels = y if y.shape == out.shape[:-1] else y.argmax(axis=-1)
        return float((pred == labels).sum()), int(pred.size)
    if isinstance(loss, BinaryCrossEntropy):
        thr = 0.0 if loss.from_logits else 0.5
        return float(((out > thr) == (y > 0.5)).sum()), int(out.size)
    return None


def _is_array(a):
    return is_cupy_array(a) or isinstance(a, np.ndarray)


def _same_device(op, **named):
    """fit/evaluate take all their arrays on one device (converting one silently would hide the mix-up).
    Lists and scalars belong to no device and are converted as before."""
    (n0, a0), *rest = named.items()
    for n, a in rest:
        if _is_array(a) and _is_array(a0) and is_cupy_array(a) != is_cupy_array(a0):
            raise TypeError(
                f"{op}: '{n0}' is {where_is(a0)} but '{n}' is {where_is(a)}; pass all on the model's "
                "device (cupy.asarray / .get())"
            )


def _check_xy(x, y, what):
    if len(x) != len(y):
        raise ValueError(f"fit: {what} x has {len(x)} samples but y has {len(y)}")


def _batches(n, batch_size, order):
    for s in range(0, n, batch_size):
        yield order[s : s + batch_size]


def _on_terminal():
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def _check_progress(progress):
    if progress not in ("auto", True, False):
        raise ValueError(f"fit: 'progress' must be 'auto', True or False, got {progress!r}")


def _progress_bar(progress, total, desc):
    """A tqdm bar when asked (True) or, by default ('auto'), only when stderr is a terminal: a log
    file gets the one line per epoch, not kilobytes of redrawn bars."""
    if progress is False or (progress == "auto" and not _on_terminal()):
        return None
    try:
        from tqdm.auto import tqdm
    except Exception:  # tqdm is an optional extra
        return None
    return tqdm(total=total, desc=desc, leave=False)


def evaluate(model, x, y, loss, batch_size=256, distributed=False):
    loss = resolve_loss(loss)
    _same_device("evaluate", x=x, y=y)
    xp = get_array_module(x)
    x, y = xp.asarray(x), xp.asarray(y)
    n = len(x)
    if distributed:
        from ..distributed.data_parallel import local_part

        x, y = local_part(x), local_part(y)
    total, correct, count = 0.0, 0.0, 0
    for s in range(0, len(x), batch_size):
        xb, yb = x[s : s + batch_size], y[s : s + batch_size]
        out = model.forward(xb, training=False)
        total += loss.forward(out, yb) * len(xb)
        c = _correct(loss, out, yb)
        if c is not None:
            correct += c[0]
            count += c[1]
    if distributed:
        from ..distributed.data_parallel import sum_over_ranks

        total, correct, count = sum_over_ranks(total, correct, count)
    res = {"loss": total / max(n, 1)}
    if count:
        res["accuracy"] = correct / count
    return res


def batched_predict(model, x, batch_size=None):
    xp = get_array_module(x)
    x = xp.asarray(x)
    if batch_size is None or len(x) <= batch_size:
        return model.forward(x, training=False)
    outs = [model.forward(x[s : s + batch_size], training=False) for s in range(0, len(x), batch_size)]
    return get_array_module(outs[0]).concatenate(outs, axis=0)


def _require_finite(xp, named):
    """check_finite=True: refuse NaN/inf in the training data up front, naming the array and a sample."""
    for name, a in named.items():
        if a is None or a.dtype.kind not in "fc":
            continue
        bad = ~xp.isfinite(a.reshape(len(a), -1)).all(axis=1)
        if bool(bad.any()):
            first = int(xp.argmax(bad))
            raise ValueError(
                f"fit: '{name}' holds non-finite values (NaN or inf), first in sample {first} "
                f"({int(bad.sum())} samples in all); clean the data or pass check_finite=False"
            )


def _stop_if_nonfinite(value, epoch, epochs, batch, batches):
    if not math.isfinite(value):
        raise FloatingPointError(
            f"fit: the loss became {value} at epoch {epoch + 1}/{epochs}, batch {batch + 1}/{batches}; the "
            "parameters are no longer meaningful (lower the learning rate, clip gradients, check the data "
            "with check_finite=True) or pass stop_on_nonfinite=False to train on regardless"
        )


def _training_data(x, y, validation_data, validation_split, check_finite):
    """fit's data, checked: (xp, x, y, validation_data), the validation split taken off the end of x, y."""
    _same_device("fit", x=x, y=y)
    xp = get_array_module(x, y)
    x, y = xp.asarray(x), xp.asarray(y)
    _check_xy(x, y, "training")
    if validation_data is not None and validation_split:
        raise ValueError("fit: give either 'validation_data' or 'validation_split', not both")
    if not (0.0 <= float(validation_split) < 1.0):
        raise ValueError(f"fit: 'validation_split' must be in [0, 1), got {validation_split!r}")
    if validation_split:
        n_val = int(len(x) * float(validation_split))
        if n_val < 1 or n_val >= len(x):
            raise ValueError(f"fit: validation_split={validation_split} leaves no validation or no training samples")
        validation_data = (x[-n_val:], y[-n_val:])
        x, y = x[:-n_val], y[:-n_val]
    if validation_data is not None:
        vx, vy = validation_data
        _same_device("fit", x=x, validation_x=vx, validation_y=vy)
        _check_xy(vx, vy, "validation")
    if check_finite:
        _require_finite(
            xp,
            {"x": x, "y": y}
            if validation_data is None
            else {"x": x, "y": y, "validation x": xp.asarray(vx), "validation y": xp.asarray(vy)},
        )
    return xp, x, y, validation_data


def _data_parallel(model, x, epochs, batch_size, optimizer, shuffle, seed, progress):
    """fit(distributed=True): the DataParallel wrapper, the seed every rank shuffles with and
    whether this rank shows progress -> (dp, seed, progress)."""
    from ..distributed.data_parallel import DataParallel

    dp = DataParallel(
        model,
        extra={
            "n": len(x),
            "x": [list(map(int, x.shape)), str(x.dtype)],
            "epochs": epochs,
            "batch_size": batch_size,
            "optimizer": repr(optimizer),
            "shuffle": bool(shuffle),
            "seed": int(seed) if isinstance(seed, (int, np.integer)) else repr(type(seed)),
        },
    )
    if seed is None and shuffle:  # the shuffle must be the same on every rank
        seed = dp.from_root(int(np.random.SeedSequence().entropy % (1 << 63)))
    return dp, seed, progress if dp.rank == 0 else False


class _Step:
    """What every batch of fit uses: the model, loss, optimizer and options, and the epoch's sums."""

    def __init__(self, model, loss, optimizer, dp, clip_norm, stop_on_nonfinite, epochs, batches):
        self.model, self.loss, self.optimizer, self.dp = model, loss, optimizer, dp
        self.clip_norm, self.stop_on_nonfinite = clip_norm, stop_on_nonfinite
        self.epochs, self.batches = epochs, batches

    def update(self):
        """Clip (if asked) and apply the gradients."""
        from ..optim import clip_grad_norm

        if self.clip_norm is not None:
            clip_grad_norm(self.model.parameters(), self.clip_norm)
        self.optimizer.step()

    def epoch(self, x, y, order, batch_size, bar, epoch):
        """One pass over the batches of `order` -> (loss sum, correct, counted) on this rank."""
        model, loss, dp = self.model, self.loss, self.dp
        total, correct, count = 0.0, 0.0, 0
        for b, idx in enumerate(_batches(len(order), batch_size, order)):
            if dp is not None:  # this rank's share of the global batch idx
                step = len(idx)
                idx = dp.shard(idx)
                if len(idx) == 0:  # fewer samples than ranks: take part in the reduction with nothing
                    model.zero_grad()
                    dp.sync_gradients()
                    self.update()
                    if bar is not None:
                        bar.update(step)
                    continue
            xb, yb = x[idx], y[idx]
            model.zero_grad()
            out = model.forward(xb, training=True)
            value = loss.forward(out, yb)
            if self.stop_on_nonfinite:
                _stop_if_nonfinite(float(value), epoch, self.epochs, b, self.batches)
            if dp is None:
                model._backward_for_training(loss.backward())  # the input's gradient is not used
            else:
                dp.backward(loss.backward())
            self.update()
            total += value * len(idx)
            c = _correct(loss, out, yb)
            if c is not None:
                correct += c[0]
                count += c[1]
            if bar is not None:
                bar.update(len(idx) if dp is None else step)
                bar.set_postfix(loss=f"{value:.4f}")
        return total, correct, count


def _record(history, model, optimizer, validation_data, loss, batch_size, dp, scheduler):
    """The end of an epoch: validation metrics, and the learning rate before the scheduler steps."""
    if validation_data is not None:
        vx, vy = validation_data
        res = evaluate(model, vx, vy, loss, batch_size=max(batch_size, 256), distributed=dp is not None)
        history.setdefault("val_loss", []).append(res["loss"])
        if "accuracy" in res:
            history.setdefault("val_accuracy", []).append(res["accuracy"])
    if scheduler is not None:
        history.setdefault("lr", []).append(float(optimizer.lr))
        scheduler.step()


def _should_stop(early_stopping, history, model, dp):
    """early_stopping's decision on this epoch's monitored value (rank 0's, for every rank)."""
    if early_stopping is None:
        return False
    key = early_stopping.monitor if early_stopping.monitor in history else "loss"
    stop = early_stopping.step(history[key][-1], model)
    if dp is not None:
        stop = dp.from_root(stop)  # one decision for every rank
    return stop


def fit(
    model,
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
    check_finite=False,
    stop_on_nonfinite=True,
    distributed=False,
    checkpoint=None,
):
    _check_progress(progress)
    loss = resolve_loss(loss)
    optimizer = resolve_optimizer(optimizer, model)
    if int(epochs) < 1 or int(batch_size) < 1:
        raise ValueError(f"fit: 'epochs' and 'batch_size' must be >= 1, got {epochs!r}, {batch_size!r}")
    epochs, batch_size = int(epochs), int(batch_size)
    xp, x, y, validation_data = _training_data(x, y, validation_data, validation_split, check_finite)
    n = len(x)
    dp = None
    if distributed:
        dp, seed, progress = _data_parallel(model, x, epochs, batch_size, optimizer, shuffle, seed, progress)
    rng = np.random.default_rng(seed)
    steps = _Step(model, loss, optimizer, dp, clip_norm, stop_on_nonfinite, epochs, -(-n // batch_size))
    history = {"loss": []}
    if early_stopping is not None:
        early_stopping.reset()
    for epoch in range(epochs):
        order = rng.permutation(n) if shuffle else np.arange(n)
        order_x = order if xp is np else xp.asarray(order)
        bar = _progress_bar(progress, n, f"epoch {epoch + 1}/{epochs}")
        total, correct, count = steps.epoch(x, y, order_x, batch_size, bar, epoch)
        if bar is not None:
            bar.close()
        if dp is not None:
            total, correct, count = dp.sum_floats(total, correct, count)
        history["loss"].append(total / max(n, 1))
        if count:
            history.setdefault("accuracy", []).append(correct / count)
        _record(history, model, optimizer, validation_data, loss, batch_size, dp, scheduler)
        if progress:  # one line per epoch, with or without a bar ('auto' included)
            msg = " ".join(f"{k}={v[-1]:.4f}" for k, v in history.items())
            print(f"epoch {epoch + 1}/{epochs}: {msg}")
        if checkpoint is not None:
            from ..distributed.checkpoint import save_checkpoint

            save_checkpoint(
                checkpoint,
                model,
                optimizer,
                epoch=epoch + 1,
                history={k: [float(v) for v in vs] for k, vs in history.items()},
            )
        if _should_stop(early_stopping, history, model, dp):
            break
    if early_stopping is not None:
        early_stopping.restore(model)
    return history
