"""The docstring examples of the PyTorch-parity layers and ops run and give what they show."""
import doctest
import importlib

import numpy as np
import pytest

import deepkern as dk

MODULES = ["deepkern.functional.gru", "deepkern.functional.attention", "deepkern.nn.normalization",
           "deepkern.nn.lstm_gru", "deepkern.nn.multihead"]


@pytest.mark.parametrize("module", MODULES)
def test_examples_run(module):
    mod = importlib.import_module(module)
    with np.printoptions(legacy=False):
        res = doctest.testmod(mod, extraglobs={"np": np, "dk": dk},
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0, f"{module}: {res}"
