"""Device, precision and the CPU allocator cache used by inference."""

from __future__ import annotations

import ctypes
import sys

import pytest
import torch

from glaviz.models import runtime
from glaviz.models.runtime import (
    autocast,
    cpu_allocator_cache,
    heap_buffers,
    release_cached_memory,
    resolve_device,
    resolve_precision,
)

GLIBC = runtime._glibc() is not None


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")
    ]  # fmt: skip


def _mmapped_bytes() -> int:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    return int(libc.mallinfo2().hblkhd)


def test_resolve_device_and_precision():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_precision(torch.device("cpu")) == "32"
    with pytest.raises(ValueError, match="precision must be"):
        resolve_precision(torch.device("cpu"), "8")
    with autocast(torch.device("cpu"), "bf16"):
        assert torch.is_autocast_enabled("cpu")
    with autocast(torch.device("cpu"), "32"):
        assert not torch.is_autocast_enabled("cpu")


@pytest.mark.skipif(not GLIBC, reason="the allocator cache is glibc-only (no-op elsewhere)")
def test_allocator_cache_keeps_big_buffers_in_the_heap_and_restores_defaults():
    # above glibc's largest adaptive mmap threshold (32 MiB) and its top-of-heap slack (64 MiB),
    # so that by default the buffer is always a fresh mmap whatever ran before in this process
    size = 96 * 2**20
    before = _mmapped_bytes()
    plain = torch.empty(size, dtype=torch.uint8)
    assert _mmapped_bytes() - before >= size  # default: a fresh mmap for a big buffer
    del plain
    with cpu_allocator_cache() as active:
        assert active
        with cpu_allocator_cache() as nested:  # nesting keeps the outer setting
            assert nested
        cached = torch.empty(size, dtype=torch.uint8)
        assert _mmapped_bytes() - before < size  # from the heap
        del cached
    again = torch.empty(size, dtype=torch.uint8)  # defaults restored on leaving the block
    assert _mmapped_bytes() - before >= size
    del again


@pytest.mark.skipif(not GLIBC, reason="the allocator cache is glibc-only (no-op elsewhere)")
def test_heap_buffers_only_inside_the_marked_passes():
    size = 96 * 2**20  # see above
    before = _mmapped_bytes()
    with heap_buffers() as active:  # no cache around it: nothing changes
        assert not active
        outside = torch.empty(size, dtype=torch.uint8)
        assert _mmapped_bytes() - before >= size
        del outside
    with cpu_allocator_cache(heap_everywhere=False):
        io_array = torch.empty(size, dtype=torch.uint8)  # I/O buffers stay mmapped
        assert _mmapped_bytes() - before >= size
        del io_array
        with heap_buffers() as active:
            assert active
            features = torch.empty(size, dtype=torch.uint8)
            assert _mmapped_bytes() - before < size  # model passes use the heap
            del features
        later = torch.empty(4 * size, dtype=torch.uint8)  # more than the heap has free
        assert _mmapped_bytes() - before >= 4 * size
        del later
        assert release_cached_memory()
    assert not release_cached_memory()  # no cache active


_THRESHOLDS_SCRIPT = """
import ctypes, torch
from glaviz.models.runtime import cpu_allocator_cache, heap_buffers
from tests.models.test_runtime import _mmapped_bytes

def mmapped(mib):
    before = _mmapped_bytes()
    buffer = torch.empty(mib * 2**20, dtype=torch.uint8)
    grown = _mmapped_bytes() - before >= mib * 2**20
    del buffer
    return grown

with cpu_allocator_cache(heap_everywhere=False):
    with heap_buffers():
        pass
    inside = mmapped(24), mmapped(48)
print(*inside, mmapped(24))
"""


@pytest.mark.skipif(not GLIBC, reason="the allocator cache is glibc-only (no-op elsewhere)")
def test_thresholds_inside_and_after_the_cache():
    """Outside heap-buffer blocks, inside a cache and after it, buffers below 32 MiB come from
    the heap and larger ones are mmapped, as in a process whose adaptive threshold has settled
    (glibc's static default, 128 KiB, made every mid-sized buffer a fresh mmap: reading chunks
    1.4x and GDAL's COG conversion 1.8x slower). A fresh process, so that no free heap chunk
    of an earlier test takes the buffers."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", _THRESHOLDS_SCRIPT], cwd=root, check=True,
                         capture_output=True, text=True).stdout.split()  # fmt: skip
    assert out == ["False", "True", "False"]  # inside: 24 MiB heap, 48 MiB mmap; after: heap


def test_allocator_cache_can_be_switched_off(monkeypatch):
    with cpu_allocator_cache(False) as active:
        assert not active
    monkeypatch.setenv("GLAVIZ_CPU_ALLOCATOR_CACHE", "0")
    with cpu_allocator_cache() as active:
        assert not active
    with cpu_allocator_cache(True) as active:  # what predict and fit pass: the env still wins
        assert not active
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.delenv("GLAVIZ_CPU_ALLOCATOR_CACHE")
    with cpu_allocator_cache() as active:
        assert not active  # not glibc: a no-op


# ---- the bf16 trap on CPUs without native bf16 (issue #14) --------------------------------


def test_bf16_without_native_support_falls_back_to_float32(monkeypatch):
    import warnings

    from glaviz.errors import PerformanceWarning

    cpu = torch.device("cpu")
    monkeypatch.delenv(runtime.FORCE_BF16_VAR, raising=False)
    monkeypatch.setattr(runtime, "cpu_bf16_native", lambda: False)
    with pytest.warns(PerformanceWarning, match=r"precision='bf16' .*no AVX512-BF16/AMX.*float32"):
        assert runtime.resolve_precision(cpu, "bf16") == "32"
    assert "no native bf16" in runtime.describe_precision(cpu, "32")
    monkeypatch.setenv(runtime.FORCE_BF16_VAR, "1")  # benchmarks may force it
    assert runtime.resolve_precision(cpu, "bf16") == "bf16"
    monkeypatch.delenv(runtime.FORCE_BF16_VAR)
    monkeypatch.setattr(runtime, "cpu_bf16_native", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)
        assert runtime.resolve_precision(cpu, "bf16") == "bf16"
        assert runtime.resolve_precision(torch.device("meta"), "bf16") == "bf16"  # not a CPU


def test_cpu_bf16_detection_reads_cpuinfo(monkeypatch, tmp_path):
    import builtins

    real_open = builtins.open
    for flags, expected in [("fpu avx2 fma", False), ("fpu avx512f avx512_bf16", True),
                            ("fpu amx_bf16 amx_tile", True)]:  # fmt: skip
        info = tmp_path / "cpuinfo"
        info.write_text(f"processor : 0\nflags\t\t: {flags}\n")
        monkeypatch.setattr(
            builtins, "open",
            lambda p, *a, _i=info, **k: real_open(_i if p == "/proc/cpuinfo" else p, *a, **k),
        )  # fmt: skip
        runtime.cpu_bf16_native.cache_clear()
        assert runtime.cpu_bf16_native() is expected
    monkeypatch.setattr(builtins, "open", real_open)
    runtime.cpu_bf16_native.cache_clear()
