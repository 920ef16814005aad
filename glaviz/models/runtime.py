"""Where and in what precision a model runs: one place for training, inference and loading."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
import threading
from collections.abc import Callable, Iterator

import torch

from glaviz.errors import PerformanceWarning, warn

__all__ = [
    "autocast",
    "cpu_allocator_cache",
    "cpu_bf16_native",
    "describe_precision",
    "heap_buffers",
    "release_cached_memory",
    "resolve_device",
    "resolve_precision",
]

#: /proc/cpuinfo flags of native bf16 arithmetic: x86 AVX512-BF16 and AMX, Arm BF16.
_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
#: Set to 1 to run bf16 on CPUs without native support anyway (e.g. to measure it).
FORCE_BF16_VAR = "GLAVIZ_CPU_BF16"

# glibc mallopt parameters (malloc.h / mallopt(3)). Any mallopt of the mmap threshold switches
# off glibc's dynamic threshold for good. Left alone, glibc raises it to the size of each larger
# mmapped buffer freed, up to 32 MiB on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX), with a trim
# threshold of twice that: where a process doing numerical work soon settles, and what is set
# wherever no block raises them. (glibc's static default, 128 KiB, made every allocation above it
# a fresh, page-faulting mmap: reading a scene's chunks inside predict took 1.4x as long, and
# GDAL's COG conversion after predict 1.8x.)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_SETTLED = {_M_MMAP_THRESHOLD: 32 * 2**20, _M_TRIM_THRESHOLD: 64 * 2**20}
_CACHING = {_M_MMAP_THRESHOLD: 2**30, _M_TRIM_THRESHOLD: 2**31 - 1}
_depth = {_M_TRIM_THRESHOLD: 0, _M_MMAP_THRESHOLD: 0}  # blocks holding each setting
_lock = threading.Lock()  # the settings are process-wide; threads share the counters


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device``, or CUDA when available else CPU for ``None`` / ``"auto"``.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@functools.lru_cache(maxsize=1)
def cpu_bf16_native() -> bool | None:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16, AMX or Arm BF16).

    Read from the ``flags``/``Features`` lines of ``/proc/cpuinfo``; ``None`` where they
    cannot be read (not Linux). Without native support, oneDNN emulates bf16 and a bf16 pass
    runs several times slower than float32 (more than 5x on AVX2-only machines).

    Examples
    --------
    >>> cpu_bf16_native() in (True, False, None)
    True
    """
    flags = cpu_flags()
    return None if flags is None else any(f in flags for f in _BF16_FLAGS)


def cpu_flags() -> frozenset[str] | None:
    """The CPU's feature flags (first ``flags``/``Features`` line of ``/proc/cpuinfo``).

    ``None`` where they cannot be read (not Linux).

    Examples
    --------
    >>> cpu_flags() is None or isinstance(cpu_flags(), frozenset)
    True
    """
    try:
        with open("/proc/cpuinfo") as fh:
            lines = [ln for ln in fh if ln.lower().startswith(("flags", "features"))]
    except OSError:
        return None
    return frozenset(lines[0].split(":", 1)[-1].split()) if lines else None


def cpu_summary() -> str:
    """The CPU's widest x86 vector ISA and torch's thread count, for benchmark headers.

    Examples
    --------
    >>> "torch threads" in cpu_summary()
    True
    """
    flags = cpu_flags() or frozenset()
    isa = (
        "AMX" if "amx_tile" in flags
        else "AVX-512" if "avx512f" in flags
        else "AVX2" if "avx2" in flags
        else "pre-AVX2 or not x86"
    )  # fmt: skip
    return f"{isa}, {torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs"


def describe_precision(device: torch.device, precision: str) -> str:
    """One line saying how a run computes: device, dtype and, on CPUs, the ISA (for benchmarks).

    Examples
    --------
    >>> describe_precision(torch.device("cpu"), "32").startswith("cpu float32")
    True
    """
    name = {"32": "float32", "bf16": "bfloat16 autocast", "16": "float16 autocast"}[precision]
    if device.type != "cpu":
        return f"{device} {name}"
    native = {True: "native bf16", False: "no native bf16", None: "bf16 support unknown"}
    return (
        f"cpu {name} (ISA {torch.backends.cpu.get_cpu_capability()}, {native[cpu_bf16_native()]})"
    )


def resolve_precision(device: torch.device, precision: str | None = None) -> str:
    """``precision``, or the default for ``device``: bf16 (fp16 where unsupported) on CUDA, else 32.

    ``"bf16"`` on a CPU without native bf16 (:func:`cpu_bf16_native` False, e.g. AVX2-only
    machines, where it runs more than 5x slower than float32) falls back to ``"32"`` with a
    :class:`~glaviz.errors.PerformanceWarning`, unless ``GLAVIZ_CPU_BF16=1`` is set. The
    precision returned is the one that runs; :func:`describe_precision` says so in words.

    Examples
    --------
    >>> cpu = torch.device("cpu")
    >>> resolve_precision(cpu), resolve_precision(cpu, "bf16") in ("bf16", "32")
    ('32', True)
    """
    if precision is not None:
        if precision not in ("32", "bf16", "16"):
            raise ValueError(f"precision must be '32', 'bf16' or '16', got {precision!r}")
        if (
            precision == "bf16"
            and device.type == "cpu"
            and cpu_bf16_native() is False
            and os.environ.get(FORCE_BF16_VAR, "0") != "1"
        ):
            warn(
                "precision='bf16' on a CPU without native bf16 (no AVX512-BF16/AMX; ISA "
                f"{torch.backends.cpu.get_cpu_capability()}) would run more than 5x slower "
                f"than float32: running in float32 instead (set {FORCE_BF16_VAR}=1 to force "
                "bf16)",
                PerformanceWarning,
            )
            return "32"
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "16"
    return "32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast for ``precision`` ("32", "bf16", "16") on ``device``; a no-op for "32"."""
    if precision == "32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _glibc() -> ctypes.CDLL | None:
    return _load_glibc() if sys.platform.startswith("linux") else None


@functools.lru_cache(maxsize=1)
def _load_glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc only (not musl)
    except (OSError, AttributeError):
        return None
    return libc


@contextlib.contextmanager
def cpu_allocator_cache(
    enabled: bool | None = None, *, heap_everywhere: bool = True
) -> Iterator[bool]:
    """Keep freed feature maps in the glibc heap while the block runs (faster CPU inference).

    PyTorch's CPU allocator hands every buffer above glibc's mmap threshold back to the kernel
    when it is freed, so each forward pass of a 384 x 384 window page-faults (and zeroes) about
    a gigabyte of fresh memory again: ~20 % of a float32 GlaViTU pass on a 2-core CPU. Inside
    this block the heap is not trimmed, and large buffers come from the heap (everywhere, or
    with ``heap_everywhere=False`` only inside :func:`heap_buffers` blocks), so freed feature
    maps are reused. :func:`glaviz.predict` takes heap buffers for the model passes only, so
    that its scene-wide I/O arrays do not fragment the heap (outside those blocks, buffers
    above 32 MiB are mmapped). On leaving, the cached memory is returned (``malloc_trim``) and
    the thresholds are set to where glibc's adaptive ones settle in a process doing numerical
    work (mmap above 32 MiB, trim above 64 MiB). Nested blocks share one setting. A no-op
    (yielding ``False``) off glibc Linux, when ``enabled`` is ``False``, or with
    ``GLAVIZ_CPU_ALLOCATOR_CACHE=0`` in the environment.

    Note that setting a threshold switches off glibc's adaptive mmap threshold for the rest of
    the process, hence the fixed values afterwards (glibc's static default there made every
    later allocation above 128 KiB a fresh mmap: GDAL's COG conversion ran 1.8x slower).

    Examples
    --------
    >>> import torch
    >>> with cpu_allocator_cache(heap_everywhere=False) as active:
    ...     with heap_buffers():
    ...         y = torch.ones(1024, 1024).sum()
    >>> isinstance(active, bool)
    True
    """
    enabled = enabled is not False and os.environ.get("GLAVIZ_CPU_ALLOCATOR_CACHE", "1") != "0"
    libc = _glibc() if enabled else None
    if libc is None:
        yield False
        return
    with _raised(libc, _M_TRIM_THRESHOLD, on_last_exit=libc.malloc_trim) as active:
        with heap_buffers() if heap_everywhere else contextlib.nullcontext():
            yield active


def release_cached_memory() -> bool:
    """Return the cache's free heap memory to the system now (e.g. after each output block).

    Keeps a long run's resident memory near what it uses; ``False`` when no cache is active.
    """
    libc = _glibc() if _depth[_M_TRIM_THRESHOLD] > 0 else None
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


@contextlib.contextmanager
def heap_buffers() -> Iterator[bool]:
    """Inside :func:`cpu_allocator_cache`: large buffers come from the (untrimmed) heap.

    Wrap the model passes in it; outside an active cache, or where glibc refuses a 1 GiB mmap
    threshold, it does nothing (yields ``False``). glibc's threads other than the main one have
    their own arenas, whose blocks above 64 MiB are mmapped regardless.
    """
    libc = _glibc() if _depth[_M_TRIM_THRESHOLD] > 0 else None
    if libc is None:
        yield False
        return
    with _raised(libc, _M_MMAP_THRESHOLD) as active:
        yield active


@contextlib.contextmanager
def _raised(
    libc: ctypes.CDLL, param: int, *, on_last_exit: Callable[[int], object] | None = None
) -> Iterator[bool]:
    """glibc's ``param`` at its caching value while any block holds it, settled after the last.

    Yields ``False`` (and changes nothing) where glibc refuses the value: glibc before 2.26-ish
    takes no mmap threshold above 32 MiB. ``on_last_exit(0)`` runs after the settled value is set.
    """
    with _lock:
        active = _depth[param] > 0 or libc.mallopt(param, _CACHING[param]) == 1
        _depth[param] += active
    if not active:
        yield False
        return
    try:
        yield True
    finally:
        with _lock:
            _depth[param] -= 1
            if _depth[param] == 0:
                libc.mallopt(param, _SETTLED[param])
                if on_last_exit is not None:
                    on_last_exit(0)
