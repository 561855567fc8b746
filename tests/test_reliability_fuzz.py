"""Property-based fuzzing (hypothesis) of every op against its float64 reference in tests/reference/.

Each example draws a valid call (shapes, parameters, memory layout, value kind: normal, small
integers for ties, NaN/inf sprinkled in) and a dtype, runs forward and backward, and compares
both with the reference at DESIGN.md's tolerances (NaN pattern exact, indices exact).

CI runs a bounded, derandomized (reproducible) set: FUZZ_EXAMPLES per op (default 25).
A longer, randomized run on demand:
    DEEPKERN_FUZZ_EXAMPLES=2000 PYTHONPATH=python python3 -m pytest -q tests/test_reliability_fuzz.py
"""

import os

import numpy as np
import pytest
from helpers import assert_close
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_ops import spec_params

_ON_DEMAND = os.environ.get("DEEPKERN_FUZZ_EXAMPLES")
FUZZ_EXAMPLES = int(_ON_DEMAND) if _ON_DEMAND else 25

settings.register_profile(
    "deepkern-fuzz",
    max_examples=FUZZ_EXAMPLES,
    deadline=None,  # kernels spin up OpenMP threads; timing is for benchmarks, not tests
    derandomize=not _ON_DEMAND,  # CI: the same examples every run; on demand: fresh ones
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
FUZZ = settings.get_profile("deepkern-fuzz")


@pytest.mark.parametrize("spec", spec_params(pytest))
@FUZZ
@given(data=st.data())
def test_op_matches_reference(spec, data):
    dtype = data.draw(st.sampled_from([np.float32, np.float64]), label="dtype")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    kw = spec.draw(data, st, rng, dtype)
    before = {k: np.array(v, copy=True) for k, v in kw.items() if isinstance(v, np.ndarray)}
    outs, ctx = spec.forward_ctx(kw)
    grads = [rng.standard_normal(s).astype(dtype) for s in spec.grad_shapes(outs)]
    dins = spec.backward(ctx, grads)
    ref_kw = {k: (np.asarray(v, np.float64) if k in spec.arrays and v is not None else v) for k, v in kw.items()}
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf in the reference is the point
        ref_outs, ref_dins = spec.reference(ref_kw, [g.astype(np.float64) for g in grads])
    for i, (o, r) in enumerate(zip(outs, ref_outs)):
        if r.dtype.kind in "iu":
            np.testing.assert_array_equal(o, r, err_msg=f"output {i} (indices)")
        else:
            assert o.dtype == dtype
            assert_close(o, r, dtype, what=f"output {i}")
    for i, (g, r) in enumerate(zip(dins, ref_dins)):
        if r is None:
            assert g is None
            continue
        assert g.dtype == dtype and g.shape == r.shape
        assert_close(g, r, dtype, what=f"grad {i}")
    for k, v in before.items():
        assert np.array_equal(kw[k], v, equal_nan=True), f"input '{k}' was modified"
