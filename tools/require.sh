# Sourced by the tools/ scripts: each says what it needs and stops with a clear message when it is
# missing, instead of failing deep inside cmake or python.
#   require_cmd NAME [HINT]          a program on PATH
#   require_py_module NAME [HINT]    a module importable by python3
DEV_HINT='set up a developer venv first (CONTRIBUTING.md): python3 -m venv .venv && . .venv/bin/activate && pip install ".[dev]"'

require_cmd() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "$(basename "$0"): needs '$1' on PATH; ${2:-$DEV_HINT}" >&2
  exit 2
}

require_py_module() {
  python3 -c "import $1" >/dev/null 2>&1 && return 0
  echo "$(basename "$0"): needs the Python module '$1' (python3 is $(command -v python3)); ${2:-$DEV_HINT}" >&2
  exit 2
}
