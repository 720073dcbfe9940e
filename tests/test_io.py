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


def test_no_empty_folders_left_after_a_failed_download(tmp_path):
    """A body that raises (an offline download) leaves no folder it created empty; folders that
    existed before, or that hold something, stay; a body that succeeds keeps everything."""
    import pytest

    from rb_crossclass.core.io import no_empty_folders_left

    target = tmp_path / "data" / "cifar" / "batches"
    with pytest.raises(OSError, match="offline"), no_empty_folders_left(target):
        target.mkdir(parents=True)
        raise OSError("offline")
    assert not (tmp_path / "data").exists() and tmp_path.is_dir()
    with pytest.raises(OSError), no_empty_folders_left(target):
        target.mkdir(parents=True)
        (tmp_path / "data" / "partial.tmp").write_text("kept")
        raise OSError("offline")
    assert (tmp_path / "data" / "partial.tmp").is_file() and not (tmp_path / "data" / "cifar").exists()
    with no_empty_folders_left(target):
        target.mkdir(parents=True)
    assert target.is_dir()


def test_a_failed_cifar_download_leaves_no_data_folder(tmp_path, monkeypatch):
    """The offline case a new user met: `--dataset cifar10` without the files left an empty ./data."""
    import pytest
    import robustbench.data as rb_data

    from rb_crossclass.data import open_split
    from rb_crossclass.data.errors import DatasetError

    calls = []

    def offline(n_examples, data_dir):
        calls.append(data_dir)
        os.makedirs(data_dir, exist_ok=True)  # as torchvision does before it downloads
        raise OSError("<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr(rb_data, "load_cifar10", offline)
    with pytest.raises(DatasetError, match="cifar10 not found under.*Name or service not known"):
        open_split("cifar10", "test", 8, tmp_path / "data")
    assert calls == [str(tmp_path / "data")] and not (tmp_path / "data").exists()
