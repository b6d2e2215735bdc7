"""What a benchmark ran on, printed beside its figures: ratios between encoders depend on the
CPU (PyTorch and ONNX Runtime use different kernels for each instruction set), so a figure
without its CPU cannot be compared with another run's."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def describe() -> str:
    """e.g. "AMD EPYC, 2 cores, avx512" (from /proc/cpuinfo where there is one)."""
    name, flags = platform.processor() or platform.machine(), set()
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
            if name and flags:
                break
    simd = ("avx512" if "avx512f" in flags else "avx2" if "avx2" in flags
            else "avx" if "avx" in flags else "no avx")
    return f"{name}, {os.cpu_count()} cores, {simd}"
