#!/usr/bin/env bash
# Create (once) the project's virtual environment in .venv and install tsgd into it.
# Idempotent: reinstalls only when pyproject.toml changed since the last install.
# Usage: source scripts/bootstrap.sh   (activates .venv in the calling shell)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${TSGD_VENV:-$root/.venv}"
# The CPU build of torch 2.13.0 lies on this kind of machine; any other spec pulls CUDA wheels.
torch_spec="${TSGD_TORCH_SPEC:-torch==2.13.0}"
stamp="$venv/.tsgd-installed"
want="$(cat "$root/pyproject.toml" | sha256sum | cut -c1-16) $torch_spec"

if [ ! -x "$venv/bin/python" ]; then
  echo "[tsgd] creating virtual environment in $venv" >&2
  python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[tsgd] installing $torch_spec and tsgd[dev] (first use only)" >&2
  "$venv/bin/python" -m pip install -q --upgrade pip >&2
  "$venv/bin/python" -m pip install -q "$torch_spec" >&2
  "$venv/bin/python" -m pip install -q -e "$root[dev]" >&2
  "$venv/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null 2>&1 || true
  echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
export VIRTUAL_ENV="$venv"
