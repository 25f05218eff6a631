"""storage: every file written atomically, a failed write ends in one line and leaves nothing behind."""

import argparse
import errno

import pytest
import torch

from noisetrain.cli import run
from noisetrain.errors import CheckpointError
from noisetrain.storage import atomic_write, load_torch, save_torch, source_hash


def full_disk(*args, **kwargs):
    """What torch.save raises when the disk fills up mid-write (a RuntimeError, not an OSError)."""
    raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file data/3: "
                       "file write failed")


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    last = tmp_path / "last.pt"
    save_torch({"epoch": 1}, last)
    monkeypatch.setattr(torch, "save", lambda obj, f, *a, **k: (open(f, "wb").write(b"partial"), full_disk()))
    with pytest.raises(CheckpointError) as caught:
        save_torch({"epoch": 2}, last)
    message = str(caught.value)
    assert str(last) in message and "file write failed" in message and "\n" not in message
    assert load_torch(last) == {"epoch": 1}  # the previous checkpoint, intact
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no .last.pt.<pid>.tmp keeps the disk full


def test_a_failed_write_ends_in_one_line(tmp_path, capsys):
    def write_fails(tmp):
        tmp.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    def main(_args):
        atomic_write(tmp_path / "out.json", write_fails)

    with pytest.raises(SystemExit) as stopped:
        run(main, argparse.ArgumentParser(), [])
    assert stopped.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: cannot write {tmp_path / 'out.json'} (No space left on device): check that its folder is "
                   "writable and the disk has room; the previous file, if any, is intact"]
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_write_leaves_no_temporary_file(tmp_path):
    def interrupted(tmp):
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "out.npz", interrupted)
    assert list(tmp_path.iterdir()) == []


def test_source_hash_follows_the_code(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    first = source_hash(tmp_path / "pkg")
    (tmp_path / "pkg" / "notes.txt").write_text("not code")
    assert source_hash(tmp_path / "pkg") == first  # only Python sources count
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    assert source_hash(tmp_path / "pkg") != first
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "b.py").write_text("")
    assert source_hash(tmp_path / "pkg") != first  # a new module counts too


def test_a_failed_write_without_a_message_names_its_error_type(tmp_path):
    def bare(tmp):
        raise RuntimeError()

    with pytest.raises(CheckpointError, match=r"cannot write .*out.pt \(RuntimeError\)"):
        atomic_write(tmp_path / "out.pt", bare)
    assert list(tmp_path.iterdir()) == []
