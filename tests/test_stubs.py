"""The typed stubs shipped with the package (python/deepkern/_cpu.pyi, _cuda.pyi) name exactly the
functions the modules have, and each stub's parameters match the binding's named arguments. The CUDA
stub is checked against deepkern._cuda and the simulator deepkern._cuda_sim where they import."""

import ast
import importlib
import inspect
import os
import re

import pytest
from deepkern import _cpu

STUB = os.path.join(os.path.dirname(_cpu.__file__), "_cpu.pyi")


def _stub_functions(path):
    tree = ast.parse(open(path, encoding="utf-8").read())
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def _module_functions(mod):
    return {n for n in dir(mod) if not n.startswith("_") and callable(getattr(mod, n))}


def test_stub_lists_exactly_the_module_functions():
    assert set(_stub_functions(STUB)) == _module_functions(_cpu)


@pytest.mark.parametrize("name", ["_cuda", "_cuda_sim"])
def test_cuda_stub_lists_exactly_the_module_functions(name):
    try:
        mod = importlib.import_module(f"deepkern.{name}")
    except ImportError:
        pytest.skip(f"deepkern.{name} is not built here")
    stub = os.path.join(os.path.dirname(_cpu.__file__), "_cuda.pyi")
    assert set(_stub_functions(stub)) == _module_functions(mod)


@pytest.mark.parametrize("name", sorted(_module_functions(_cpu)))
def test_stub_parameters_match_the_binding(name):
    stub = _stub_functions(STUB)[name]
    args = stub.args
    stub_names = [a.arg for a in args.posonlyargs + args.args]
    # pybind11's signature line: name(a: type, b: type = default, ...) -> ret
    line = inspect.getdoc(getattr(_cpu, name)).splitlines()[0]
    inner = line[line.index("(") + 1 : line.rindex(") ->")]
    bound = re.findall(r"(?:^|, )(\w+):", inner)
    if all(re.fullmatch(r"arg\d+", b) for b in bound):  # a binding without py::arg names: positional only
        assert len(stub_names) == len(bound) and len(args.posonlyargs) == len(bound)
    else:
        assert stub_names == bound
