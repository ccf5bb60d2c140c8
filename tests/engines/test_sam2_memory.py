"""What the SAM 2 engine reports holding (``memory_bytes``), for a server's memory budget."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sam2")

from sam2vol.engines.sam2.engine import _host_bytes  # noqa: E402
from tests.engines.sam2_helpers import make_engine, points, volume  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _state_output_bytes(engine) -> int:
    """Bytes of every tracked slice's memory, mask and pointer, summed from the state itself."""
    total = 0
    for track in engine._objects.values():
        for outputs in track.state["output_dict_per_obj"].values():
            for kind in ("cond_frame_outputs", "non_cond_frame_outputs"):
                for out in outputs[kind].values():
                    for key in ("maskmem_features", "pred_masks", "obj_ptr"):
                        total += out[key].numel() * out[key].element_size()
    return total


@pytest.fixture
def tracked():
    """An engine after a click and a propagation of two objects through every slice."""
    eng = make_engine()
    eng.set_image(volume(), (2.0, 1.0, 1.0))
    assert eng.memory_bytes() == 0  # nothing encoded or tracked yet
    objects = {}
    for oid, click in ((1, (36, 40, True)), (2, (20, 20, True))):
        prompt = points(click)
        prompt.result = eng.predict_slice(4, prompt, object_id=oid)
        objects[oid] = {4: prompt}
    list(eng.propagate(objects))
    yield eng
    eng.close()


def test_memory_counts_the_cached_features_and_the_states_once_each(tracked):
    stats = tracked.cache.stats
    assert stats.stored == tracked.n_slices and stats.device_bytes == 0
    per_slice = stats.bytes // stats.stored
    positions = sum(t.numel() * t.element_size() for t in tracked.cache._pos_enc)
    logits = sum(a.nbytes for t in tracked._objects.values() for a in t.logits.values())
    # At least the features the cache stored (counted by the cache as it stored them) and
    # the memories, masks and pointers of every tracked slice of both objects ...
    floor = stats.bytes + _state_output_bytes(tracked)
    assert tracked.memory_bytes() >= floor + positions + logits
    # ... and each tensor once: the features handed to the states share storage with the
    # cache (counting them twice would add a slice's features), the memory position
    # encoding is one tensor for every slice.
    assert tracked.memory_bytes() < floor + positions + logits + per_slice // 4


def test_close_gives_the_cached_features_back(tracked):
    budget = tracked.cache.budget
    before, used = tracked.memory_bytes(), budget.used
    stored = tracked.cache.stats.bytes
    tracked.close()
    assert budget.used == used - stored
    assert tracked.memory_bytes() <= before - stored + stored // tracked.n_slices
    # still usable: the slice is encoded again when needed
    prompt = points((36, 40, True))
    assert tracked.predict_slice(6, prompt, object_id=3).any() in (True, False)
    assert tracked.cache.stats.stored == 1


def test_only_host_memory_counts():
    seen: set[int] = set()
    cpu = torch.zeros(10, dtype=torch.float32)
    elsewhere = torch.empty(1000, device="meta")
    nested = {"a": [cpu, cpu[2:]], "b": ({"c": elsewhere},), "d": "text"}
    assert _host_bytes(nested, seen) == 40
    assert _host_bytes(cpu, seen) == 0  # already counted
