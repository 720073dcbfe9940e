"""Atomic writes and folder replacement."""

from __future__ import annotations

import os
import stat

import pytest

from rb_crossclass.core.io import atomic_write_json, atomic_write_text, new_sibling_dir, replace_dir


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_atomic_files_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "hi")
        atomic_write_json(tmp_path / "b.json", {"x": 1})
        folder = new_sibling_dir(tmp_path / "out")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a.txt") == 0o644 and _mode(tmp_path / "b.json") == 0o644
    assert _mode(folder) == 0o755
    assert (tmp_path / "a.txt").read_text() == "hi"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == [folder.name]


def test_replace_dir_swaps_and_cleans_up(tmp_path):
    target = tmp_path / "out"
    first = new_sibling_dir(target)
    (first / "f").write_text("1")
    replace_dir(first, target)
    second = new_sibling_dir(target)
    (second / "f").write_text("2")
    replace_dir(second, target)
    assert (target / "f").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_replace_dir_puts_the_previous_folder_back_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "out"
    target.mkdir()
    (target / "f").write_text("kept")
    new = new_sibling_dir(target)
    real_replace = os.replace

    def failing(src, dst):
        if str(src) == str(new):
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError, match="disk full"):
        replace_dir(new, target)
    assert (target / "f").read_text() == "kept"
    assert not (tmp_path / "out.old").exists()
