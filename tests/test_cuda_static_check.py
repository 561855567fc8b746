"""tools/cuda_static_check.py and the build's ptxas checks, on fixture kernels compiled by nvcc
(tests/cuda_static/): the tool must fail on a hot kernel with local memory and on a tensor-core
kernel without HMMA, and pass on good ones; the CMakeLists ptxas flags must reject a stray double.
The parsing, rules and occupancy parts also run without nvcc."""

import importlib.util
import json
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "cuda_static")
NVCC = shutil.which("nvcc")
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc not on PATH (CI has it): fixture kernels cannot be built")

_spec = importlib.util.spec_from_file_location("cuda_static_check", os.path.join(ROOT, "tools", "cuda_static_check.py"))
csc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(csc)


def _cuobjdump_or_skip():
    try:
        return csc.find_cuobjdump()
    except csc.CheckError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def fixture_obj(tmp_path_factory):
    if NVCC is None:
        pytest.skip("nvcc not on PATH (CI has it): fixture kernels cannot be built")
    _cuobjdump_or_skip()
    out = tmp_path_factory.mktemp("cuda_static") / "fixture_kernels.o"
    subprocess.run(
        [
            NVCC,
            "-c",
            "-std=c++17",
            "-O3",
            "-gencode",
            "arch=compute_90,code=sm_90",
            os.path.join(FIXTURES, "fixture_kernels.cu"),
            "-o",
            str(out),
        ],
        check=True,
    )
    return str(out)


GOOD_TABLE = """
[[kernel]]
pattern = "fx::plain_kernel"
block = 256
hot = true
[[kernel]]
pattern = "fx::local_kernel"
block = 128
[[kernel]]
pattern = "fx::fake_tc_kernel"
block = 32
[[kernel]]
pattern = "fx::mma_kernel"
block = 32
hot = true
tensor_core = true
ldsm = true
ldgsts = true
"""


def _run(tmp_path, obj, table, capsys, extra=()):
    path = tmp_path / "kernels.toml"
    path.write_text(table)
    rc = csc.main([obj, "--table", str(path), *extra])
    return rc, capsys.readouterr()


def test_good_marks_pass_and_figures_are_read(fixture_obj, tmp_path, capsys):
    rc, out = _run(tmp_path, fixture_obj, GOOD_TABLE, capsys, ["--json", str(tmp_path / "k.json")])
    assert rc == 0, out.err
    with open(tmp_path / "k.json") as f:
        rows = {r["kernel"]: r for r in json.load(f)["kernels"]}
    assert set(rows) == {"fx::plain_kernel", "fx::local_kernel", "fx::fake_tc_kernel", "fx::mma_kernel"}
    assert all(r["arch"] == "sm_90" for r in rows.values())
    mma, local, plain = rows["fx::mma_kernel"], rows["fx::local_kernel"], rows["fx::plain_kernel"]
    assert mma["hmma"] >= 1 and mma["ldsm"] >= 1 and mma["ldgsts"] >= 1
    assert rows["fx::fake_tc_kernel"]["hmma"] == 0
    assert local["stack"] > 0 and local["ldl"] + local["stl"] > 0
    assert plain["ldl"] == plain["stl"] == plain["stack"] == plain["local"] == 0
    assert plain["regs"] > 0
    if plain["sm90_occupancy"] is not None:  # needs cuda_occupancy.h and g++, present wherever nvcc is
        assert plain["sm90_occupancy"]["blocks_per_sm"] == 8 and plain["sm90_occupancy"]["occupancy_pct"] == 100.0


def test_hot_kernel_with_local_memory_fails(fixture_obj, tmp_path, capsys):
    table = GOOD_TABLE.replace(
        'pattern = "fx::local_kernel"\nblock = 128', 'pattern = "fx::local_kernel"\nblock = 128\nhot = true'
    )
    rc, out = _run(tmp_path, fixture_obj, table, capsys)
    assert rc == 1
    assert "fx::local_kernel [sm_90]: marked hot but uses local memory" in out.err
    assert "plain_kernel [sm_90]: marked" not in out.err


def test_tensor_core_kernel_without_hmma_fails(fixture_obj, tmp_path, capsys):
    table = GOOD_TABLE.replace(
        'pattern = "fx::fake_tc_kernel"\nblock = 32',
        'pattern = "fx::fake_tc_kernel"\nblock = 32\ntensor_core = true\nldsm = true',
    )
    rc, out = _run(tmp_path, fixture_obj, table, capsys)
    assert rc == 1
    assert "fx::fake_tc_kernel [sm_90]: marked tensor_core but its SASS has no HMMA" in out.err
    assert "fx::fake_tc_kernel [sm_90]: marked ldsm but its SASS has no LDSM" in out.err
    assert "mma_kernel [sm_90]: marked" not in out.err


def test_unlisted_kernel_fails(fixture_obj, tmp_path, capsys):
    table = GOOD_TABLE.replace('pattern = "fx::plain_kernel"', 'pattern = "fx::renamed_kernel"')
    rc, out = _run(tmp_path, fixture_obj, table, capsys)
    assert rc == 1
    assert "fx::plain_kernel [sm_90]: not in" in out.err
    assert "'fx::renamed_kernel' matches no kernel" in out.err


def test_markdown_table(fixture_obj, tmp_path, capsys):
    rc, out = _run(tmp_path, fixture_obj, GOOD_TABLE, capsys, ["--markdown"])
    assert rc == 0
    lines = [ln for ln in out.out.splitlines() if ln.startswith("|")]
    assert lines[0].startswith("| kernel | arch | block | regs |")
    assert len(lines) == 2 + 4
    assert any(ln.startswith("| `fx::mma_kernel` | sm_90 | 32 |") for ln in lines)


def test_bad_table_is_a_clear_error(fixture_obj, tmp_path, capsys):
    rc, out = _run(tmp_path, fixture_obj, '[[kernel]]\npattern = "fx::*"\nblock = 256\nhott = true\n', capsys)
    assert rc == 2 and "unknown key 'hott'" in out.err
    rc, out = _run(tmp_path, fixture_obj, '[[kernel]]\npattern = "fx::*"\n', capsys)
    assert rc == 2 and "'block' is required" in out.err


# ---------------------------------------------------------------- the build's ptxas checks
def _cmake_ptxas_checks():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        text = f.read()
    sets = re.findall(r"set\(ptxas_checks (\S+)\)", text)
    assert len(sets) == 2, "CMakeLists.txt: expected the default and the *_f64.cu ptxas check lists"
    return sets  # [default, f64]


def _nvcc_ptxas(src, checks, tmp_path):
    return subprocess.run(
        [
            NVCC,
            "-c",
            "-std=c++17",
            "-O3",
            "-gencode",
            "arch=compute_90,code=sm_90",
            "--Werror=all-warnings",
            f"--ptxas-options={checks}",
            src,
            "-o",
            str(tmp_path / "x.o"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_cmake_ptxas_flags_cover_the_static_checks():
    default, f64 = _cmake_ptxas_checks()
    assert set(default.split(",")) == {"-warn-spills", "-warn-lmem-usage", "-warn-double-usage", "-Werror"}
    assert set(f64.split(",")) == {"-warn-spills", "-warn-lmem-usage", "-Werror"}


@needs_nvcc
def test_build_flags_reject_double_outside_f64_files(tmp_path):
    default, f64 = _cmake_ptxas_checks()
    src = os.path.join(FIXTURES, "float_kernel_double_literal.cu")
    r = _nvcc_ptxas(src, default, tmp_path)
    assert r.returncode != 0 and "double precision" in (r.stdout + r.stderr)
    r = _nvcc_ptxas(src, f64, tmp_path)
    assert r.returncode == 0, r.stderr


@needs_nvcc
def test_build_flags_reject_local_memory(tmp_path):
    default, _ = _cmake_ptxas_checks()
    r = _nvcc_ptxas(os.path.join(FIXTURES, "fixture_kernels.cu"), default, tmp_path)
    assert r.returncode != 0 and "local_kernel" in (r.stdout + r.stderr)


# ---------------------------------------------------------------- pure parts (no nvcc)
RES_USAGE = """
Fatbin ptx code:
================
arch = sm_80

Fatbin elf code:
================
arch = sm_80
Resource usage:
 Function _ZN2dk4cuda1kEv:
  REG:40 STACK:16 SHARED:2048 LOCAL:8 CONSTANT[0]:544 TEXTURE:0 SURFACE:0 SAMPLER:0

Fatbin elf code:
================
arch = sm_90
Resource usage:
 Function _ZN2dk4cuda1kEv:
  REG:38 STACK:0 SHARED:2048 LOCAL:0 CONSTANT[0]:544 TEXTURE:0 SURFACE:0 SAMPLER:0

Fatbin elf code:
================
arch = sm_90
Resource usage:
 Function _ZN2dk4cuda1kEv:
  REG:42 STACK:0 SHARED:1024 LOCAL:0 CONSTANT[0]:544 TEXTURE:0 SURFACE:0 SAMPLER:0
"""

SASS = """
Fatbin elf code:
================
arch = sm_90
\tcode for sm_90
\t\tFunction : _ZN2dk4cuda1kEv
        /*0000*/                   LDSM.16.M88.4 R8, [R0] ;               /* 0x000000000008783b */
        /*0010*/              @!P0 HMMA.16816.F32 R8, R8, R8, RZ ;        /* 0x000000080808723c */
        /*0020*/                   DFMA R2, R2, R4, R6 ;                  /* 0x0 */
        /*0030*/                   STL.128 [R1], R4 ;                     /* 0x0 */
\t\t..........
\t\tFunction : _ZN2dk4cuda1jEv
        /*0000*/                   EXIT ;                                 /* 0x0 */
"""


def test_parse_res_usage_per_arch_worst_of_duplicates():
    r = csc.parse_res_usage(RES_USAGE)
    assert r[("_ZN2dk4cuda1kEv", "sm_80")] == {"regs": 40, "stack": 16, "shared": 2048, "local": 8}
    # the same kernel from two translation units: the worst figures
    assert r[("_ZN2dk4cuda1kEv", "sm_90")] == {"regs": 42, "stack": 0, "shared": 2048, "local": 0}
    assert len(r) == 2


def test_parse_sass_counts_watched_opcodes():
    s = csc.parse_sass(SASS)
    assert s[("_ZN2dk4cuda1kEv", "sm_90")] == {"LDSM": 1, "HMMA": 1, "DFMA": 1, "STL": 1}
    assert s[("_ZN2dk4cuda1jEv", "sm_90")] == {}


def test_short_name():
    assert (
        csc.short_name("void dk::cuda::pooling::max_fwd_kernel<float>(dk::Pool2dParams, float const*, float*, long*)")
        == "pooling::max_fwd_kernel<float>"
    )
    assert csc.short_name("void dk::cuda::(anonymous namespace)::k<(int)4, __half>(int)") == "k<(int)4, __half>"
    assert csc.short_name("fx::plain_kernel(float*, int)") == "fx::plain_kernel"


def _row(**kw):
    r = {
        "kernel": "k",
        "arch": "sm_90",
        "regs": 32,
        "stack": 0,
        "shared": 0,
        "local": 0,
        "block": 256,
        "dynamic_smem": 0,
        "listed": True,
        "marks": {},
        "hmma": 0,
        "ldsm": 0,
        "ldgsts": 0,
        "ldl": 0,
        "stl": 0,
        "fp64_ops": 0,
        "sm90_occupancy": None,
    }
    r.update(kw)
    return r


def test_rules():
    table = os.path.join(ROOT, "csrc", "cuda", "kernels.toml")
    assert csc.problems([_row()], table) == []
    assert "not in csrc/cuda/kernels.toml" in csc.problems([_row(listed=False)], table)[0]
    assert csc.problems([_row(marks={"hot": True}, stack=16)], table)
    assert csc.problems([_row(marks={"hot": True}, ldl=1)], table)
    assert csc.problems([_row(ldl=1)], table) == []  # not hot: reported, not an error
    errs = csc.problems([_row(marks={"tensor_core": True, "ldsm": True, "ldgsts": True}, hmma=4, ldsm=2)], table)
    assert errs == ["k [sm_90]: marked ldgsts but its SASS has no LDGSTS"]
    occ0 = {"blocks_per_sm": 0, "warps_per_sm": 0, "occupancy_pct": 0.0, "limiter": "registers"}
    assert "cannot launch on sm_90" in csc.problems([_row(sm90_occupancy=occ0)], table)[0]


def test_repo_table_loads_and_covers_pooling():
    entries = csc.load_table(os.path.join(ROOT, "csrc", "cuda", "kernels.toml"))
    for k in ("max_fwd_kernel", "max_bwd_kernel", "avg_fwd_kernel", "avg_bwd_kernel"):
        for t in ("float", "double", "__half", "__nv_bfloat16"):
            assert csc.match(entries, f"pool::{k}<{t}>") is not None


def test_occupancy_sm90(tmp_path):
    if csc.cuda_include_dir() is None or not (shutil.which("g++") or shutil.which("c++")):
        pytest.skip("no cuda_occupancy.h (CUDA toolkit) or g++")
    res = csc.occupancy_sm90(
        [(256, 32, 0, 0), (256, 128, 0, 0), (128, 40, 100 * 1024, 0), (128, 40, 0, 100 * 1024), (1024, 65, 0, 0)],
        str(tmp_path),
    )
    assert [r["blocks_per_sm"] for r in res] == [8, 2, 2, 2, 0]
    assert res[0]["occupancy_pct"] == 100.0 and res[1]["occupancy_pct"] == 25.0
    assert res[1]["limiter"] == "registers" and res[2]["limiter"] == "shared"
