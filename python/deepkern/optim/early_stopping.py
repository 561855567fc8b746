"""EarlyStopping: stop training when a monitored value has not improved for `patience` epochs."""

import math


class EarlyStopping:
    """step(value, model=None) -> True when training should stop.

    An epoch improves when value < best - min_delta (mode='min'; 'max' for accuracies). After
    `patience` epochs in a row without improvement step() returns True. With restore_best the
    parameters of the best epoch are kept (a copy, from model.state_dict()) and restore(model)
    puts them back; Sequential.fit does that when it stops, and at the end of training.
    monitor names the history key fit watches ('val_loss', or 'loss' when there is no validation).
    """

    def __init__(self, patience=5, min_delta=0.0, restore_best=True, monitor="val_loss", mode="min"):
        if int(patience) < 0:
            raise ValueError(f"EarlyStopping: 'patience' must be >= 0, got {patience!r}")
        if float(min_delta) < 0:
            raise ValueError(f"EarlyStopping: 'min_delta' must be >= 0, got {min_delta!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: 'mode' must be 'min' or 'max', got {mode!r}")
        self.patience, self.min_delta = int(patience), float(min_delta)
        self.restore_best, self.monitor, self.mode = bool(restore_best), monitor, mode
        self.reset()

    def reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = -1
        self.wait = 0
        self.epoch = -1
        self.stopped_epoch = None
        self.should_stop = False
        self.best_state = None

    def _improved(self, v):
        if self.mode == "min":
            return v < self.best - self.min_delta
        return v > self.best + self.min_delta

    def step(self, value, model=None):
        if self.should_stop:  # once stopped it stays stopped (reset() to reuse)
            return True
        self.epoch += 1
        v = float(value)
        if self._improved(v):
            self.best, self.best_epoch, self.wait = v, self.epoch, 0
            if self.restore_best and model is not None:
                self.best_state = model.state_dict()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.should_stop = True
                self.stopped_epoch = self.epoch
        return self.should_stop

    __call__ = step

    def restore(self, model):
        """Load the best epoch's parameters into model (when restore_best and one was recorded)."""
        if self.restore_best and self.best_state is not None:
            model.load_state_dict(self.best_state)
            return True
        return False
