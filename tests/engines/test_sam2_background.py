"""Background encoding through the Python ``Session``: started when a volume opens, re-centred
on the slice in view, paused while the user acts, exact, stopped at close (random weights)."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sam2")

from sam2vol.session import Session
from sam2vol.volume import Volume
from tests.engines.sam2_helpers import N_SLICES, make_engine, volume

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
TIMEOUT_S = 120
LONG = 40  # slices: seconds of encoding left after the first two (checks the thread runs)


def _volume(n_slices: int = N_SLICES) -> Volume:
    """The helper's stack as axial slices; longer ones keep the thread busy for a while."""
    return Volume(np.moveaxis(volume(n_slices=n_slices), 0, -1).copy())


def _wait(condition, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _click(session: Session, s: int, row: int = 36, col: int = 40):
    return session.add_point(session.geometry.slice_to_voxel(s, row, col))


def test_a_session_encodes_slices_without_being_asked():
    with Session(_volume(), make_engine()) as session:
        engine = session.engine
        assert session.background_encoding
        _wait(lambda: engine.cache.stats.stored == session.geometry.n_slices)
        _wait(lambda: not engine.background_encoding)  # done: the thread ends
        assert engine.cache.stats.encoded == session.geometry.n_slices  # each slice once
        encoded = engine.cache.stats.encoded
        _click(session, 8)
        assert engine.cache.stats.encoded == encoded  # the click skipped the encoder


def test_background_off_encodes_nothing_until_asked():
    session = Session(_volume(), make_engine(), background_encoding=False)
    time.sleep(0.5)
    assert session.engine.cache.stats.encoded == 0 and not session.engine.background_encoding
    session.encode_in_background()
    _wait(lambda: session.engine.cache.stats.encoded > 0)
    session.encode_in_background(False)
    assert not session.engine.background_encoding
    session.close()


def test_view_recentres_the_encoding():
    session = Session(_volume(), make_engine(), background_encoding=False)
    engine = session.engine
    last = session.geometry.n_slices - 1
    with engine._foreground():  # the user acts: the thread waits, then follows the view
        session.encode_in_background()  # from the middle slice
        session.view(last)
        time.sleep(0.3)
        assert engine.cache.stats.encoded == 0
    _wait(lambda: engine.cache.stats.stored >= 3)
    assert list(engine.cache._store)[:3] == [last, last - 1, last - 2]
    session.close()


def test_close_stops_the_thread_and_frees_the_features():
    session = Session(_volume(LONG), make_engine())  # still encoding when it is closed
    engine = session.engine
    _wait(lambda: engine.cache.stats.stored >= 2)
    assert engine.background_encoding
    thread = engine._prefetch
    session.close()
    assert not thread.is_alive() and not engine.background_encoding
    assert engine.cache.stats.stored == 0
    encoded = engine.cache.stats.encoded
    time.sleep(0.5)
    assert engine.cache.stats.encoded == encoded  # nothing more after close
    session.view(3)  # closed: viewing does not restart it
    assert not engine.background_encoding


def test_acting_while_it_encodes_gives_the_masks_of_no_background_encoding():
    """Clicks and a propagation that interleave with the background thread give the same
    logits, bit for bit, as the same session without it."""

    def run(background: bool) -> tuple[list[np.ndarray], int]:
        session = Session(_volume(LONG), make_engine(), background_encoding=background)
        engine = session.engine
        if background:
            session.view(0)
            _wait(lambda: engine.cache.stats.stored >= 2)  # it runs: slices 0 and 1 are in
            assert engine.background_encoding
        masks = [_click(session, 7).copy()]  # a slice it has not reached
        logits = [engine.last_logits.copy()]
        for result in session.propagate():
            logits.append(result.logits[1])
        masks.append(session.mask_stack(1).copy())
        by_background = engine.cache.stats.encoded
        session.close()
        return logits + masks, by_background

    expected, _ = run(background=False)
    got, _ = run(background=True)
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_viewing_again_resumes_an_encoding_that_ended():
    """Ended (everything encoded, or the budget spent): a new view starts it again."""
    session = Session(_volume(), make_engine())
    engine = session.engine
    n = session.geometry.n_slices
    _wait(lambda: engine.cache.stats.stored == n and not engine.background_encoding)
    engine.cache.clear()  # e.g. memory given back
    session.view(2)
    _wait(lambda: engine.cache.stats.stored == n)
    assert engine.cache.stats.encoded == 2 * n
    session.close()


def test_viewing_again_does_not_restart_an_encoding_whose_budget_is_spent():
    """With the budget spent, a new view starts nothing (it would encode a batch and drop it);
    once memory is back, it does."""
    probe = make_engine()
    probe.set_image(volume(), (1.0, 1.0, 1.0))
    probe.cache.features(0)
    per_slice = probe.cache.stats.bytes
    probe.close()
    # A budget of its own, for 3.5 float32 slices (auto would store float16 here).
    engine = make_engine(feature_cache_gb=3.5 * per_slice / 2**30, feature_cache_dtype="float32")
    session = Session(_volume(), engine)
    _wait(lambda: engine.cache.stats.stored == 3 and not engine.background_encoding)
    encoded = engine.cache.stats.encoded
    assert not engine.cache.has_room()
    session.view(7)
    time.sleep(0.3)
    _wait(lambda: not engine.background_encoding)
    assert engine.cache.stats.encoded == encoded
    engine.cache.clear()  # memory given back
    session.view(7)
    _wait(lambda: engine.cache.stats.stored == 3 and not engine.background_encoding)
    assert engine.cache.stats.encoded > encoded
    session.close()
