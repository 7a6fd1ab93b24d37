"""Does this CPU run int8 convolutions fast? It decides which shipped detector `variant: auto` loads.

onnxruntime's int8 kernels are only much faster than float where the CPU has int8 dot-product
instructions: AVX-512 VNNI or AVX-VNNI on x86 (Intel since Ice Lake / Alder Lake, AMD since Zen 4),
the dot-product extension on 64-bit Arm. Measured on this project's 2-core EPYC VM with AVX-512
VNNI, the shipped int8 copy ran 2.2 times as fast as the float model at the same accuracy
(models/README.md); on an AVX2-only EPYC it was only 1.2 times as fast, and less precise in 8 bits.
The flags come from /proc/cpuinfo (Linux, where the edge runs); elsewhere the answer is no.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["INT8_DOT_PRODUCT_FLAGS", "Int8Support", "int8_support"]

# The flag names Linux prints in /proc/cpuinfo ("flags" on x86, "Features" on Arm).
INT8_DOT_PRODUCT_FLAGS = ("avx512_vnni", "avx_vnni", "asimddp")


@dataclass(frozen=True)
class Int8Support:
    fast: bool
    reason: str  # for the log and check-config: which flag, or why not


def int8_support(cpuinfo: Path = Path("/proc/cpuinfo")) -> Int8Support:
    """Whether int8 inference pays on this CPU, with the flag that says so."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return Int8Support(False, f"{cpuinfo} unreadable: assuming no int8 dot-product instructions")
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    for flag in INT8_DOT_PRODUCT_FLAGS:
        if flag in flags:
            return Int8Support(True, f"CPU has {flag}")
    return Int8Support(False, "CPU has no int8 dot-product instructions (" + ", ".join(INT8_DOT_PRODUCT_FLAGS) + ")")
