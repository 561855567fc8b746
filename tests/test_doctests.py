"""Every public function's docstring example runs (doctest) and gives what it shows; and every
public function has one."""

import doctest
import importlib
import inspect

import deepkern as dk
import numpy as np
import pytest

# module -> the public functions it defines that must carry a runnable example
PUBLIC = {
    "deepkern._backend": ["cuda_available", "get_array_module", "set_num_threads", "get_num_threads"],
    "deepkern.rl.loop": ["train", "rollout", "discounted_return"],
    "deepkern.rl.planning": ["value_iteration", "policy_iteration", "policy_evaluation"],
    "deepkern.bptt": ["bptt"],
    "deepkern.optim.clip": ["clip_grad_norm", "clip_grad_value"],
    "deepkern.functional.conv": ["conv2d", "conv2d_backward"],
    "deepkern.functional.pooling": ["max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward"],
    "deepkern.functional.lstm": ["lstm_cell", "lstm_cell_backward", "lstm", "lstm_backward"],
    "deepkern.functional.attention": ["scaled_dot_product_attention", "scaled_dot_product_attention_backward"],
    "deepkern.functional.gru": ["gru_cell", "gru_cell_backward", "gru", "gru_backward"],
}


# modules whose classes carry examples too (layers)
EXAMPLES_ONLY = ["deepkern.nn.normalization", "deepkern.nn.lstm_gru", "deepkern.nn.multihead"]


@pytest.mark.parametrize("module", sorted(PUBLIC) + EXAMPLES_ONLY)
def test_docstring_examples_run(module):
    mod = importlib.import_module(module)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    with np.printoptions(legacy=False):
        for test in finder.find(mod, module, globs={"np": np, "dk": dk}):
            runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0, f"{module}: no docstring examples found"
    assert result.failed == 0, f"{module}: {result.failed} docstring example(s) failed (output above)"


@pytest.mark.parametrize("module,name", [(m, n) for m, names in sorted(PUBLIC.items()) for n in names])
def test_public_function_has_an_example(module, name):
    fn = getattr(importlib.import_module(module), name)
    doc = inspect.getdoc(fn) or ""
    assert ">>>" in doc, f"{module}.{name}: its docstring has no runnable example"
