"""``payments schemas write|check`` on a scratch directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from payments.cli import main as cli
from payments.schemas import export
from payments.schemas.compat import AllowedChange, ChangeKind

RESULT = "result-event.v1.json"


@pytest.fixture
def written(tmp_path: Path) -> Path:
    assert export.main(["write", "--dir", str(tmp_path)]) == 0
    return tmp_path


def test_write_then_check_passes_and_write_is_idempotent(
    written: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sorted(p.name for p in written.iterdir()) == sorted(export.generate())
    capsys.readouterr()
    assert cli(["schemas", "write", "--dir", str(written)]) == 0
    assert "wrote" not in capsys.readouterr().out
    assert cli(["schemas", "check", "--dir", str(written)]) == 0


def test_check_fails_on_missing_stale_and_orphaned_files(
    written: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (written / "ledger-transaction.v1.json").unlink()
    stale = json.loads((written / RESULT).read_text())
    stale["description"] = "edited by hand"
    (written / RESULT).write_text(json.dumps(stale))
    (written / "old-thing.v1.json").write_text("{}")
    assert export.main(["check", "--dir", str(written)]) == 1
    err = capsys.readouterr().err
    assert "ledger-transaction.v1.json: missing" in err
    assert f"{RESULT}: stale" in err
    assert "old-thing.v1.json: no message type generates it" in err
    assert "make schemas" in err


def _with_extra_result_property(directory: Path) -> str:
    """Makes the committed result schema promise a property the models do not write."""
    schema = json.loads((directory / RESULT).read_text())
    schema["properties"]["refund_of"] = {"type": "string"}
    schema["required"].append("refund_of")
    text = export.render(schema)
    (directory / RESULT).write_text(text)
    return text


def test_write_refuses_an_incompatible_change_and_writes_nothing(
    written: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    committed = _with_extra_result_property(written)
    (written / "psp-request.v1.json").unlink()
    assert export.main(["write", "--dir", str(written)]) == 1
    err = capsys.readouterr().err
    assert "#/properties/refund_of (refund_of): property_removed" in err
    assert "ALLOWED_CHANGES" in err
    assert (written / RESULT).read_text() == committed
    assert not (written / "psp-request.v1.json").exists()


def test_check_against_a_separate_baseline(written: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    baseline = tmp_path_factory.mktemp("baseline")
    for path in written.iterdir():
        (baseline / path.name).write_text(path.read_text())
    assert export.main(["check", "--dir", str(written), "--baseline", str(baseline)]) == 0
    _with_extra_result_property(baseline)
    assert export.main(["check", "--dir", str(written), "--baseline", str(baseline)]) == 1


def test_allowed_change_lets_write_proceed(
    written: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _with_extra_result_property(written)
    allow = AllowedChange("#/properties/refund_of", ChangeKind.PROPERTY_REMOVED, "test")
    monkeypatch.setattr(export, "ALLOWED_CHANGES", {"result-event": (allow,)})
    assert export.main(["write", "--dir", str(written)]) == 0
    assert f"wrote {written / RESULT}" in capsys.readouterr().out
    assert export.main(["check", "--dir", str(written)]) == 0


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as exc:
        export.main(["publish"])
    assert exc.value.code == 2
