"""``--precision auto``: bfloat16 only with native bfloat16 matmuls and a model wide enough; a resumed
run keeps the precision it started with."""
from __future__ import annotations

import json

import pytest
import torch

from torch_geometric_lieconv.experiments import qm9, rotmnist
from torch_geometric_lieconv.experiments.config import settle_precision
from torch_geometric_lieconv.training.precision import choose_precision, native_bfloat16

CPU = torch.device("cpu")


def _cpuinfo(tmp_path, flags: str, name: str = "cpuinfo") -> str:
    path = tmp_path / name
    path.write_text(f"processor\t: 0\nvendor_id\t: Test\nflags\t\t: fpu sse2 avx2 {flags}\n\nprocessor\t: 1\n")
    return str(path)


def test_native_bfloat16_reads_the_cpu_flags(tmp_path):
    assert native_bfloat16(CPU, _cpuinfo(tmp_path, "avx512f avx512_bf16"))[0]
    assert native_bfloat16(CPU, _cpuinfo(tmp_path, "amx_tile amx_bf16"))[0]
    found, why = native_bfloat16(CPU, _cpuinfo(tmp_path, "avx512f avx512bw"))  # AVX-512 without BF16
    assert not found and "without" in why
    assert not native_bfloat16(CPU, str(tmp_path / "absent"))[0]


def test_auto_picks_bfloat16_only_on_native_hardware_for_wide_models(tmp_path):
    native, plain = _cpuinfo(tmp_path, "avx512_bf16", "native"), _cpuinfo(tmp_path, "avx2", "plain")
    assert choose_precision("auto", CPU, 1536, 256, native).precision == "bfloat16"
    assert choose_precision("auto", CPU, 256, 256, native).precision == "bfloat16"  # the bound is inclusive
    narrow = choose_precision("auto", CPU, 128, 256, native)
    assert narrow.precision == "float32" and "128 channels < 256" in narrow.reason
    assert choose_precision("auto", CPU, 1536, 256, plain).precision == "float32"
    assert choose_precision("auto", CPU, 1536, None, native).precision == "float32"  # no bfloat16 path
    for forced in ("float32", "float64", "bfloat16"):  # an explicit precision is never overridden
        for cpuinfo, channels in ((plain, 16), (native, 1536)):
            assert choose_precision(forced, CPU, channels, 256, cpuinfo).precision == forced


def test_auto_is_qm9s_default_and_is_decided_before_use(monkeypatch):
    settings = qm9.SETTINGS.resolve(preset="quick")
    assert settings.trainer.precision == "auto"
    with pytest.raises(ValueError, match="auto"):
        settings.trainer.dtype
    monkeypatch.setattr("torch_geometric_lieconv.training.precision.native_bfloat16",
                        lambda device, cpuinfo=None: (True, "test CPU"))
    wide = settings.replace(hidden_channels=qm9.BF16_MIN_CHANNELS)
    reason = settle_precision(wide, CPU, qm9.BF16_MIN_CHANNELS)
    assert wide.trainer.precision == "bfloat16" and wide.trainer.autocast == torch.bfloat16
    assert wide.saved()["measured"]["precision_choice"] == reason and "auto" in reason
    narrow = settings.replace(hidden_channels=qm9.BF16_MIN_CHANNELS - 1)
    settle_precision(narrow, CPU, qm9.BF16_MIN_CHANNELS)
    assert narrow.trainer.precision == "float32" and narrow.trainer.autocast is None
    with pytest.raises(ValueError, match="precision"):  # tasks without a bfloat16 path refuse it
        rotmnist.SETTINGS.resolve(flags={"precision": "auto"})


def test_a_resumed_auto_run_keeps_its_started_precision(tmp_path, monkeypatch):
    """A run begun in bfloat16 on a bfloat16 machine resumes in bfloat16 on one without (else it would
    continue in another precision than it began, or be refused)."""
    started = qm9.SETTINGS.resolve(preset="quick", flags={"precision": "bfloat16"})
    settle_precision(started, CPU, qm9.BF16_MIN_CHANNELS)
    (tmp_path / "config.json").write_text(json.dumps(started.saved()))
    monkeypatch.setattr("torch_geometric_lieconv.training.precision.native_bfloat16",
                        lambda device, cpuinfo=None: (False, "test CPU without bfloat16"))
    resumed = qm9.SETTINGS.resolve(preset="quick", flags={"resume": True})
    settle_precision(resumed, CPU, qm9.BF16_MIN_CHANNELS, str(tmp_path))
    assert resumed.trainer.precision == "bfloat16"
    assert resumed.measured["precision_choice"] == started.measured["precision_choice"]
    fresh = qm9.SETTINGS.resolve(preset="quick")  # not resuming: decided anew on this machine
    settle_precision(fresh, CPU, qm9.BF16_MIN_CHANNELS, str(tmp_path))
    assert fresh.trainer.precision == "float32"
