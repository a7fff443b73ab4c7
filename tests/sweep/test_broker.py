"""The request broker: each key sent once, every waiting unit completed, nothing held after release."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from distalign.sweep.broker import RequestBroker


def test_a_key_in_flight_is_not_queued_again_and_its_answer_completes_every_waiter() -> None:
    b = RequestBroker()
    first = b.add(["k1", "k2"], ["r1", "r2"])
    second = b.add(["k2", "k3"], ["r2", "r3"])
    assert first.new == ["k1", "k2"] and second.new == ["k3"]
    assert not first.ready and not second.ready
    b.queue("m", "generate", first.new + second.new)
    assert b.take("m", "generate", 2) == ["k1", "k2"] and b.backlog() == 3
    assert b.answer(["k2"], ["a2"], sent=True) == []  # both units still wait for another key
    assert b.answer(["k1", "k3"], ["a1", "a3"], sent=True) == [first.uid, second.uid]
    assert b.backlog() == 0


def test_an_answer_kept_for_a_waiting_unit_serves_a_new_unit_at_once_and_is_let_go_after() -> None:
    b = RequestBroker()
    u = b.add(["k"], ["r"])
    assert b.first_seen(u.new) == ["k"]
    assert b.answer(["k"], ["a"], sent=False) == [u.uid]
    again = b.add(["k", "k"], ["r", "r"])  # the same key twice in one unit
    assert again.ready and again.new == []
    assert b.release(u.uid) == [("a", False)]
    assert b.held() == 1  # the second unit still needs it
    assert b.release(again.uid) == [("a", False), ("a", False)]
    assert b.held() == 0
    later = b.add(["k"], ["r"])  # asked again after release: a new request (the store may have it)
    assert later.new == ["k"] and b.first_seen(later.new) == []


def test_first_seen_counts_each_key_of_the_sweep_once() -> None:
    b = RequestBroker()
    assert b.first_seen(["a", "b"]) == ["a", "b"]
    assert b.first_seen(["b", "c"]) == ["c"]


def test_an_answer_nobody_waits_for_is_ignored() -> None:
    b = RequestBroker()
    u = b.add(["k"], ["r"])
    assert b.answer(["k"], ["a"], sent=True) == [u.uid]
    assert b.answer(["k"], ["late"], sent=True) == []
    assert b.release(u.uid) == [("a", True)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=5), min_size=1, max_size=12))
def test_every_unit_completes_exactly_once_and_each_key_is_sent_once_while_held(
    units: list[list[str]],
) -> None:
    """Answer queued keys in any batch size: every unit completes once, with its keys' answers in order,
    no key is queued while it is queued or in flight, and nothing is held at the end."""
    b = RequestBroker()
    completed: list[int] = []
    regs = []
    for keys in units:
        reg = b.add(keys, [f"req-{k}" for k in keys])
        regs.append((reg.uid, keys))
        b.queue("m", "generate", reg.new)
        if reg.ready:
            completed.append(reg.uid)
    queued = [k for q in b.queues.values() for k in q]
    assert len(queued) == len(set(queued))
    while b.queues:
        keys = b.take("m", "generate", 3)
        completed += b.answer(keys, [f"ans-{k}" for k in keys], sent=True)
    assert sorted(completed) == [uid for uid, _ in regs]
    for uid, keys in regs:
        assert [a for a, _ in b.release(uid)] == [f"ans-{k}" for k in keys]
    assert b.held() == 0 and b.backlog() == 0
