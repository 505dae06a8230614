"""The main-job command refuses bad input before starting anything, with a clear message and exit code 2."""

from __future__ import annotations

from pathlib import Path

from cli.demo import main


def test_missing_sketch_path(tmp_path: Path, capsys) -> None:
    assert main(["--sketch", str(tmp_path / "nope.png"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--sketch" in err and "nope.png" in err and "not found" in err


def test_unreadable_reference(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "ref.png"
    bad.write_bytes(b"this is not a png")
    assert main(["--reference", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--reference" in err and "ref.png" in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
