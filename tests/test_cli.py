"""The ``payments`` console script itself: --version, help, unknown commands (through the installed script)."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from payments.cli import main

SCRIPT = Path(sys.executable).parent / "payments"


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([flag]) == 0
    assert capsys.readouterr().out == f"payments {metadata.version('shared-payments')}\n"


def test_version_from_the_installed_script() -> None:
    proc = subprocess.run([str(SCRIPT), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"payments {metadata.version('shared-payments')}"
    assert proc.stdout.split()[1][0].isdigit()


def test_unknown_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    assert "usage: payments" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "audit" in capsys.readouterr().out
