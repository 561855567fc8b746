"""The repository's documents stand alone: every relative link and every repository path they name
exists, nothing points outside the repository, and no internal tracker number appears."""

import glob
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
# `csrc/...`, `python/deepkern/...`, `tests/...` and the like inside backticks
CODE_PATH = re.compile(r"`((?:csrc|python|tests|tools|benchmarks|docs|examples)/[^`\s:]*)`")
TRACKER = re.compile(r"(?i)\bissues? #?\d+\b|(?<![\w&/])#\d{1,3}\b")
OUTSIDE = re.compile(r"\.\./shared|/work/")


def _tracked(patterns):
    try:
        out = subprocess.run(["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True)
        files = out.stdout.split()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an sdist): walk instead
        files = [
            os.path.relpath(p, ROOT)
            for pat in patterns
            for p in glob.glob(os.path.join(ROOT, "**", pat), recursive=True)
        ]
    return sorted(f for f in set(files) if not f.startswith(("build", ".venv")))


DOCS = _tracked(["*.md"])
SCRIPTS = _tracked(["*.sh", "*.py", "*.toml", ".ci/run", "CMakeLists.txt"])


def _exists(path):
    """A repository path as documents write it: may carry a glob, a placeholder (<op>) or a {a,b} list."""
    path = path.rstrip(".,;)")
    if "<" in path:  # csrc/cuda/<op>/: a pattern, checked only up to the placeholder
        path = path.split("<")[0]
    alternatives = [path]
    m = re.search(r"\{([^}]*)\}", path)
    if m:
        alternatives = [path[: m.start()] + alt + path[m.end() :] for alt in m.group(1).split(",")]
    return all(glob.glob(os.path.join(ROOT, a)) or _ignored(a) for a in alternatives)


def _ignored(path):
    """Generated output folders (examples/out/) are named by the docs but listed in .gitignore."""
    try:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0
    except OSError:
        return False


def test_there_are_documents():
    assert "README.md" in DOCS and len(DOCS) >= 5


@pytest.mark.parametrize("doc", DOCS)
def test_relative_links_resolve(doc):
    text = open(os.path.join(ROOT, doc), encoding="utf-8").read()
    base = os.path.dirname(os.path.join(ROOT, doc))
    bad = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = os.path.normpath(os.path.join(base, target.split("#")[0]))
        if not path.startswith(ROOT + os.sep) or not os.path.exists(path):
            bad.append(target)
    assert not bad, f"{doc}: links that do not resolve inside the repository: {bad}"


@pytest.mark.parametrize("doc", DOCS)
def test_named_paths_exist(doc):
    text = open(os.path.join(ROOT, doc), encoding="utf-8").read()
    missing = sorted({p for p in CODE_PATH.findall(text) if not _exists(p)})
    assert not missing, f"{doc}: names repository paths that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS + SCRIPTS)
def test_nothing_points_outside_or_at_the_tracker(doc):
    if doc == "tests/test_docs.py":
        return
    lines = open(os.path.join(ROOT, doc), encoding="utf-8", errors="replace").read().splitlines()
    outside = [f"{i}: {ln.strip()}" for i, ln in enumerate(lines, 1) if OUTSIDE.search(ln)]
    assert not outside, f"{doc}: points outside the repository: {outside[:5]}"
    if doc.endswith(".md"):
        tracker = [f"{i}: {ln.strip()}" for i, ln in enumerate(lines, 1) if TRACKER.search(ln)]
        assert not tracker, f"{doc}: internal tracker numbers a reader cannot see: {tracker[:5]}"
