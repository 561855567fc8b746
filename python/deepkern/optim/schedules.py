"""Learning-rate schedules (torch.optim.lr_scheduler's closed forms); call step() once per epoch.
Each sets optimizer.lr; `last_epoch` counts the step() calls."""

import math


class _Schedule:
    def __init__(self, optimizer):
        if not hasattr(optimizer, "lr"):
            raise TypeError(
                f"{type(self).__name__}: 'optimizer' must be a deepkern optimizer, got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.last_epoch = 0

    def get_lr(self):
        raise NotImplementedError

    def step(self):
        self.last_epoch += 1
        self.optimizer.lr = self.get_lr()
        return self.optimizer.lr

    def get_last_lr(self):
        return self.optimizer.lr


class StepLR(_Schedule):
    """lr = base_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer)
        if int(step_size) < 1:
            raise ValueError(f"StepLR: 'step_size' must be >= 1, got {step_size!r}")
        self.step_size, self.gamma = int(step_size), float(gamma)

    def get_lr(self):
        return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)


class ExponentialLR(_Schedule):
    """lr = base_lr * gamma ** epoch."""

    def __init__(self, optimizer, gamma):
        super().__init__(optimizer)
        self.gamma = float(gamma)

    def get_lr(self):
        return self.base_lr * self.gamma**self.last_epoch


class CosineAnnealingLR(_Schedule):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2."""

    def __init__(self, optimizer, T_max, eta_min=0.0):
        super().__init__(optimizer)
        if int(T_max) < 1:
            raise ValueError(f"CosineAnnealingLR: 'T_max' must be >= 1, got {T_max!r}")
        self.T_max, self.eta_min = int(T_max), float(eta_min)

    def get_lr(self):
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
