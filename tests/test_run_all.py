"""`./run_all.sh --help` answers at once, with plain bash, before anything is installed."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of run_all.sh and the bootstrap next to it, with no virtual environment."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "run_all.sh", tmp_path / "run_all.sh")
    shutil.copy(ROOT / "scripts" / "bootstrap.sh", tmp_path / "scripts" / "bootstrap.sh")
    return tmp_path


def fake_tools(folder: Path, marker: Path) -> Path:
    """A PATH holding only a python / python3 / pip that leave `marker` and fail: a bootstrap
    (or any Python start) would show."""
    folder.mkdir()
    for name in ("python", "python3", "pip"):
        tool = folder / name
        tool.write_text(f"#!/bin/sh\necho {name} >> '{marker}'\nexit 1\n")
        tool.chmod(0o755)
    return folder


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["--quick", "--help"]])
def test_help_prints_usage_without_bootstrap(checkout: Path, tmp_path: Path, argv: list[str]):
    marker = tmp_path / "started.txt"
    tools = fake_tools(tmp_path / "bin", marker)
    start = time.perf_counter()
    result = subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(checkout / "run_all.sh"), *argv],
        capture_output=True,
        text=True,
        timeout=10,
        env={"PATH": str(tools), "HOME": str(tmp_path / "home")},
    )
    took = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Run every experiment of the report")
    assert "  ./run_all.sh --quick          # the quick profile: the whole grid in minutes" in lines
    assert any(line.startswith("  ./run_all.sh --robustness") for line in lines)
    assert not any(line.startswith("#") for line in lines)  # comment marks are stripped
    assert "set -euo pipefail" not in result.stdout  # the usage ends with the comment block
    assert not marker.exists(), marker.read_text()  # no python, pip or bootstrap ran
    assert not (checkout / ".venv").exists()
    assert took < 5
