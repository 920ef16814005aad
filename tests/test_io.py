"""Tests of glaviz._io: atomic writes, read-only folders named, stale temporaries removed."""

from __future__ import annotations

import errno
import tempfile

import pytest

from glaviz._io import atomic_write, check_writable, remove_stale_temporaries
from glaviz.errors import OutputNotWritableError


def test_a_read_only_folder_names_the_target_not_a_temporary(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / ".a.txt.x1.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", denied)  # root writes anywhere: simulate it
    with pytest.raises(OutputNotWritableError, match=r"cannot write '.*a\.txt': the folder "
                       r"'.*' is not writable \(Permission denied\)") as info:  # fmt: skip
        atomic_write(tmp_path / "a.txt", lambda tmp: tmp.write_text("x"))
    assert ".tmp" not in str(info.value) and isinstance(info.value, PermissionError)
    with pytest.raises(OutputNotWritableError, match="cannot write the output 'x'"):
        check_writable(tmp_path / "x", "the output 'x'")


def test_stale_temporaries_of_one_target_only(tmp_path):
    target = tmp_path / "m.tif"
    stale = [tmp_path / ".m.tif.ab12cd_e.tif", tmp_path / ".m.tif.zzzzzzzz.tif"]
    others = [tmp_path / ".m.tif.short.tif", tmp_path / ".n.tif.ab12cd_e.tif",
              tmp_path / ".m.tif.ab12cd_e.tmp", tmp_path / "m.tif.ab12cd_e.tif"]  # fmt: skip
    for p in stale + others:
        p.write_text("x")
    assert sorted(remove_stale_temporaries(target, ".tif")) == sorted(stale)
    assert all(p.exists() for p in others) and not any(p.exists() for p in stale)
    atomic_write(target, lambda tmp: tmp.write_text("done"))
    assert target.read_text() == "done" and remove_stale_temporaries(target, ".tif") == []
