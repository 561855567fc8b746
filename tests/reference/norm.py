"""float64 reference for BatchNorm2D: one channel at a time, the formulas written out."""

import numpy as np


def batch_norm2d(x, weight, bias, running_mean, running_var, training, momentum, eps, num_batches=0):
    """-> (y, new_running_mean, new_running_var). running_* None: batch statistics always."""
    x = np.asarray(x, np.float64)
    N, C, H, W = x.shape
    y = np.empty_like(x)
    rm = None if running_mean is None else np.array(running_mean, np.float64)
    rv = None if running_var is None else np.array(running_var, np.float64)
    n = N * H * W
    for c in range(C):
        vals = x[:, c].ravel()
        if training or rm is None:
            mu = sum(vals) / n
            var = sum((v - mu) ** 2 for v in vals) / n
            if training and rm is not None:
                m = 1.0 / (num_batches + 1) if momentum is None else momentum
                rm[c] = (1 - m) * rm[c] + m * mu
                rv[c] = (1 - m) * rv[c] + m * var * n / (n - 1)
        else:
            mu, var = rm[c], rv[c]
        g = 1.0 if weight is None else weight[c]
        b = 0.0 if bias is None else bias[c]
        y[:, c] = (x[:, c] - mu) / np.sqrt(var + eps) * g + b
    return y, rm, rv
