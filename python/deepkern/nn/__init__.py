"""Layers, losses and models built on the functional kernels (numpy or cupy)."""

from . import init, losses
from ._base import Layer, Parameter, manual_seed
from .activations import Dropout, Flatten, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .attention import BahdanauAttention, LuongAttention
from .conv import Conv2D
from .dense import Dense, Embedding, OneHot
from .losses import MSE, BinaryCrossEntropy, Loss, SoftmaxCrossEntropy
from .multihead import MultiHeadAttention
from .normalization import BatchNorm2D, LayerNorm
from .pooling import AvgPool2D, MaxPool2D
from .positional import PositionalEncoding
from .recurrent import GRU, LSTM, SimpleRNN
from .seq2seq import AttentionDecoder
from .sequential import Sequential
from .transformer import TransformerEncoderLayer

__all__ = [
    "Layer",
    "Parameter",
    "manual_seed",
    "init",
    "losses",
    "Dense",
    "Conv2D",
    "MaxPool2D",
    "AvgPool2D",
    "Flatten",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "Dropout",
    "LeakyReLU",
    "Softmax",
    "Embedding",
    "OneHot",
    "Sequential",
    "Loss",
    "SoftmaxCrossEntropy",
    "MSE",
    "BinaryCrossEntropy",
    "SimpleRNN",
    "LSTM",
    "GRU",
    "BahdanauAttention",
    "LuongAttention",
    "MultiHeadAttention",
    "PositionalEncoding",
    "LayerNorm",
    "BatchNorm2D",
    "TransformerEncoderLayer",
    "AttentionDecoder",
]
