"""Device choice of the SAM 2 engine: MPS only where it runs bfloat16, clear errors otherwise."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from sam2vol.engines.sam2 import device  # noqa: E402
from sam2vol.errors import InputError  # noqa: E402


def test_mps_works_needs_bfloat16_on_mps(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert not device.mps_works()
    # Reported available but unable to make a bfloat16 tensor there (older macOS; here: no MPS).
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(
        device.torch, "ones", lambda *a, **k: (_ for _ in ()).throw(TypeError("bfloat16"))
    )
    assert not device.mps_works()


def test_auto_takes_mps_only_where_it_works(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device, "mps_works", lambda: True)
    assert device.pick_device("auto").type == "mps"
    monkeypatch.setattr(device, "mps_works", lambda: False)
    assert device.pick_device("auto").type == "cpu"


def test_named_devices_are_checked(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device, "mps_works", lambda: False)
    with pytest.raises(InputError, match="macOS 14"):
        device.pick_device("mps")
    with pytest.raises(InputError, match="no CUDA device"):
        device.pick_device("cuda")
    with pytest.raises(InputError, match="auto, cpu, cuda or mps"):
        device.pick_device("tpu")
    assert device.pick_device("cpu").type == "cpu"
