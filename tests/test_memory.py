"""digitrec.memory: the scheduled full collection gives back memory held by reference cycles."""

import gc
import weakref

from digitrec import memory


class Holder:
    """A node of a reference cycle that keeps a large buffer alive."""

    def __init__(self):
        self.buffer = bytearray(8 * 2**20)
        self.me = self  # the cycle: only a full collection frees it


def make_cycle() -> weakref.ref:
    return weakref.ref(Holder())


def test_a_due_collection_frees_a_cycle(monkeypatch):
    monkeypatch.setattr(memory, "_last", -1e9)
    gc.disable()
    try:
        held = make_cycle()
        assert held() is not None  # reference counting alone never frees it
        assert memory.collect_if_due(interval_s=10.0) >= 1
        assert held() is None
    finally:
        gc.enable()


def test_collections_are_at_most_one_per_interval(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(memory, "_last", 1000.0)
    gc.disable()
    try:
        held = make_cycle()
        assert memory.collect_if_due(interval_s=10.0, clock=lambda: now[0]) is None
        now[0] += 9.9
        assert memory.collect_if_due(interval_s=10.0, clock=lambda: now[0]) is None
        assert held() is not None
        now[0] += 0.2
        assert memory.collect_if_due(interval_s=10.0, clock=lambda: now[0]) is not None
        assert held() is None
        assert memory.collect_if_due(interval_s=10.0, clock=lambda: now[0]) is None  # just ran
    finally:
        gc.enable()

