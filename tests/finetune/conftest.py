"""Fine-tuning tests run torch on one thread: on a small, shared CPU the tiny model's many
small operations run faster that way than with threads competing for the cores."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
