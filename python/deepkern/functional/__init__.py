"""The functional kernels: validate, pick the backend, call one binding."""

from .attention import scaled_dot_product_attention, scaled_dot_product_attention_backward
from .conv import conv2d, conv2d_backward
from .gru import gru, gru_backward, gru_cell, gru_cell_backward
from .lstm import lstm, lstm_backward, lstm_cell, lstm_cell_backward
from .pooling import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward

__all__ = [
    "conv2d",
    "conv2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "lstm_cell",
    "lstm_cell_backward",
    "lstm",
    "lstm_backward",
    "gru_cell",
    "gru_cell_backward",
    "gru",
    "gru_backward",
    "scaled_dot_product_attention",
    "scaled_dot_product_attention_backward",
]
