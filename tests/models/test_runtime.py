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
