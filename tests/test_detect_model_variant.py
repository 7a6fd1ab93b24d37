"""Which shipped detector the edge loads: `detector.variant` (auto, fp32, int8) and the CPU's int8 support."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import DetectorConfig, default_model_path
from edge.detect import OnnxDetector
from edge.detect.cpu_features import int8_support

X86_AVX2 = "processor\t: 0\nflags\t\t: fpu sse sse2 avx avx2 fma\n"
X86_VNNI = "processor\t: 0\nflags\t\t: fpu sse sse2 avx avx2 avx512f avx512_vnni\n"
X86_AVX_VNNI = "processor\t: 0\nflags\t\t: fpu avx avx2 avx_vnni\n"
ARM_DOTPROD = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes crc32 atomics asimddp\n"
ARM_OLD = "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32\n"


@pytest.mark.parametrize(("text", "fast", "flag"), [
    (X86_AVX2, False, None),
    (X86_VNNI, True, "avx512_vnni"),
    (X86_AVX_VNNI, True, "avx_vnni"),
    (ARM_DOTPROD, True, "asimddp"),
    (ARM_OLD, False, None),
])
def test_int8_counts_as_fast_only_with_dot_product_instructions(
        tmp_path: Path, text: str, fast: bool, flag: str | None) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(text)
    support = int8_support(cpuinfo)
    assert support.fast is fast
    assert (flag in support.reason) if flag else ("no int8 dot-product" in support.reason)


def test_an_unreadable_cpuinfo_means_float(tmp_path: Path) -> None:
    support = int8_support(tmp_path / "missing")
    assert not support.fast and "unreadable" in support.reason


def test_variants_name_the_shipped_files() -> None:
    assert DetectorConfig(variant="fp32").model_path.name == "garbagewatch.onnx"
    assert DetectorConfig(variant="int8").model_path.name == "garbagewatch-int8.onnx"
    for variant in ("fp32", "int8"):
        assert default_model_path(variant).is_file()


def test_auto_follows_this_cpu() -> None:
    expected = "garbagewatch-int8.onnx" if int8_support().fast else "garbagewatch.onnx"
    assert DetectorConfig().model_path.name == expected
    assert default_model_path().name == expected


def test_a_model_path_wins_over_the_variant(tmp_path: Path) -> None:
    own = default_model_path("fp32")
    assert DetectorConfig(model=own, variant="int8").model_path == own


def test_both_shipped_files_load_with_the_same_classes() -> None:
    fp32 = OnnxDetector(default_model_path("fp32"))
    int8 = OnnxDetector(default_model_path("int8"))
    assert fp32.info.class_names == int8.info.class_names == ("garbage", "garbage_bin", "overflow")
    assert fp32.info.input_hw == int8.info.input_hw
    assert (fp32.info.name, int8.info.name) == ("garbagewatch", "garbagewatch-int8")


def test_an_unknown_variant_is_refused() -> None:
    with pytest.raises(ValueError, match="variant"):
        DetectorConfig(variant="fp16")  # type: ignore[arg-type]
