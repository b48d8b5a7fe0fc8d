"""The password-guessing rules on plain data: the backoff decision
(gateway.web.backoff) and the order of the queue of checks
(gateway.web.check_queue). No I/O, no clock but the one given."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.web.backoff import (
    FRESH,
    FailureBook,
    Policy,
    Record,
    Verdict,
    address_key,
    after_failure,
    decide,
)
from gateway.web.check_queue import Admission, Waiting, admit, next_up

POLICY = Policy(
    max_failures_per_address=3,
    max_failures_per_user=5,
    failure_window=60.0,
    lockout_seconds=10.0,
    max_lockout_seconds=35.0,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def failures_at(*times: float, limit: int = 3) -> Record:
    record = FRESH
    for t in times:
        record = after_failure(record, t, limit, POLICY)
    return record


@pytest.mark.parametrize(
    ("times", "now", "retry_after"),
    [
        ((), 0.0, 0.0),  # nothing known: allowed
        ((0.0, 1.0), 2.0, 0.0),  # two of three: allowed
        ((0.0, 1.0, 2.0), 2.0, 10.0),  # third: locked for lockout_seconds
        ((0.0, 1.0, 2.0), 7.0, 5.0),  # ... counting down
        ((0.0, 1.0, 2.0), 12.0, 0.0),  # ... and over
        ((0.0, 1.0, 2.0, 12.0, 13.0, 14.0), 14.0, 20.0),  # second lockout: twice as long
        ((0.0, 1.0, 2.0, 12.0, 13.0, 14.0, 34.0, 35.0, 36.0), 36.0, 35.0),  # capped (not 40)
        ((0.0, 70.0, 140.0), 140.0, 0.0),  # spread wider than the window: never three
        ((0.0, 30.0, 59.0), 59.0, 10.0),  # within one window: counted together
        ((0.0, 30.0, 61.0), 61.0, 0.0),  # the first has left the window
        # Quiet for a window after a lockout: the streak ends, no doubling.
        ((0.0, 1.0, 2.0, 80.0, 81.0, 82.0), 82.0, 10.0),
    ],
)
def test_lockouts_begin_double_and_end(
    times: tuple[float, ...], now: float, retry_after: float
) -> None:
    assert decide(failures_at(*times), FRESH, now) == (
        Verdict(retry_after, "address") if retry_after else Verdict()
    )


def test_the_longer_lockout_of_address_and_user_decides() -> None:
    address = failures_at(0.0, 1.0, 2.0)  # locked until 12
    user = Record(locked_until=30.0)
    assert decide(address, user, 5.0) == Verdict(25.0, "user")
    assert decide(address, FRESH, 5.0) == Verdict(7.0, "address")
    assert decide(FRESH, user, 31.0).allowed


@pytest.mark.parametrize(
    ("remote", "key"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),  # same /64, same record
        ("fe80::1%eth0", "fe80::/64"),
        (None, "unknown"),
        ("", "unknown"),
        ("not-an-ip", "not-an-ip"),
    ],
)
def test_address_keys(remote: str | None, key: str) -> None:
    assert address_key(remote) == key


def test_book_counts_address_and_user_and_reports_lockouts() -> None:
    clock = Clock()
    book = FailureBook(POLICY, clock, known_users=["anna"])
    for _ in range(2):
        assert book.failed("10.0.0.1", "anna") == []
    [lockout] = book.failed("10.0.0.1", "anna")  # the third from this address
    assert (lockout.scope, lockout.key, lockout.failures, lockout.seconds) == (
        "address",
        "10.0.0.1",
        3,
        10.0,
    )
    assert book.decide("10.0.0.1", "bob") == Verdict(10.0, "address")
    assert book.decide("10.0.0.2", "anna").allowed  # 3 of the user's 5
    book.failed("10.0.0.2", "anna")
    [lockout] = book.failed("10.0.0.3", "anna")
    assert lockout.scope == "user" and lockout.failures == 5
    assert book.decide("10.0.0.4", "anna") == Verdict(10.0, "user")
    assert book.strikes("10.0.0.1") == 3 and book.strikes("10.0.0.9") == 0
    # For ordering the queue: the address's and the name's wrong passwords.
    assert book.strikes("10.0.0.1", "anna") == 3 + 5
    assert book.strikes("10.0.0.9", "bob") == 0
    clock.now += 10 + 60  # lockout over and a quiet window: all forgotten
    assert book.strikes("10.0.0.1", "anna") == 0


def test_a_right_password_clears_the_user_not_the_address() -> None:
    clock = Clock()
    book = FailureBook(POLICY, clock, known_users=["anna"])
    for _ in range(2):
        book.failed("10.0.0.1", "anna")
    book.succeeded("anna")
    assert book.failed("10.0.0.1", "bob") != []  # the address still had two
    for address in ("10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.8"):
        book.failed(address, "anna")
    assert book.decide("10.0.0.9", "anna").allowed  # 4 since the success, not 6


def test_memory_is_bounded_against_rotating_names_and_addresses() -> None:
    clock = Clock()
    book = FailureBook(POLICY, clock, known_users=["anna"], max_entries=50)
    for n in range(2000):
        clock.now += 0.01
        book.failed(f"10.0.{n // 250}.{n % 250}", f"guess-{n}-" + "x" * (n % 300))
    assert len(book) <= 51
    # The configured user's record is never pushed out by the flood.
    for n in range(5):
        book.failed(f"10.1.0.{n}", "anna")
    for n in range(2000):
        book.failed(f"10.2.{n // 250}.{n % 250}", f"other-{n}")
    assert not book.decide("10.3.0.1", "anna").allowed


events = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=50.0),  # seconds since the previous event
        st.sampled_from(["a1", "a2", "a3"]),  # address
        st.sampled_from(["anna", "bob", "ghost"]),  # user name (ghost: unknown)
        st.booleans(),  # the password was right
    ),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(events)
def test_backoff_properties(history: list[tuple[float, str, str, bool]]) -> None:
    """Whatever the order of attempts: a refusal says how long, never more
    than the longest lockout; waiting that long is enough; no address gets
    more than its limit of wrong passwords checked within a window without
    being locked out; and memory stays bounded."""
    clock = Clock()
    book = FailureBook(POLICY, clock, known_users=["anna", "bob"], max_entries=4)
    since_lockout: dict[str, list[float]] = {"a1": [], "a2": [], "a3": []}
    for wait, address, user, right in history:
        clock.now += wait
        verdict = book.decide(address, user)
        if not verdict.allowed:
            assert 0 < verdict.retry_after <= POLICY.max_lockout_seconds
            clock.now += verdict.retry_after + 1e-6
            assert book.decide(address, user).allowed
        if right and user != "ghost":
            book.succeeded(user)
            continue
        lockouts = book.failed(address, user)
        since_lockout[address].append(clock.now)
        if any(lockout.scope == "address" for lockout in lockouts):
            since_lockout[address] = []
        in_window = [t for t in since_lockout[address] if t > clock.now - POLICY.failure_window]
        assert len(in_window) < POLICY.max_failures_per_address
        assert len(book) <= 2 + 4


@pytest.mark.parametrize(
    ("waiting", "newcomer", "limit", "admission"),
    [
        ([], ("a", 0), 2, Admission(True)),
        ([("a", 0)], ("a", 0), 2, Admission(True)),
        # Full of one attacker's guesses: a newcomer from elsewhere takes the
        # newest place; another guess from the attacker gets 429.
        ([("x", 5), ("x", 5)], ("b", 0), 2, Admission(True, displaced=1)),
        ([("x", 5), ("x", 5)], ("x", 5), 2, Admission(False, refused_because="address")),
        # Full of different addresses, one each: the server is busy (503) ...
        ([("x", 0), ("y", 0)], ("b", 0), 2, Admission(False, refused_because="busy")),
        # ... unless one of them has only failed so far.
        ([("x", 0), ("y", 4)], ("b", 0), 2, Admission(True, displaced=1)),
        # The address holding most places loses one, its newest.
        ([("x", 1), ("y", 0), ("x", 1), ("y", 0), ("y", 0)], ("b", 9), 5, Admission(True, 4)),
    ],
)
def test_queue_admission(
    waiting: list[tuple[str, int]], newcomer: tuple[str, int], limit: int, admission: Admission
) -> None:
    assert admit([Waiting(*w) for w in waiting], Waiting(*newcomer), limit) == admission


@pytest.mark.parametrize(
    ("waiting", "running", "index"),
    [
        ([], set(), None),
        ([("a", 0)], {"a"}, None),  # one check per address at a time
        ([("a", 0), ("b", 0)], {"a"}, 1),
        ([("x", 7), ("x", 7), ("b", 0)], set(), 2),  # fewest wrong passwords first
        ([("b", 1), ("c", 1)], set(), 0),  # then the oldest
    ],
)
def test_queue_order(waiting: list[tuple[str, int]], running: set[str], index: int | None) -> None:
    assert next_up([Waiting(*w) for w in waiting], running) == index


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(0, 20)), max_size=12),
    st.tuples(st.sampled_from("abcdefg"), st.integers(0, 20)),
    st.integers(1, 12),
)
def test_queue_never_grows_past_its_limit(
    waiting: list[tuple[str, int]], newcomer: tuple[str, int], limit: int
) -> None:
    queue = [Waiting(*w) for w in waiting[:limit]]
    admission = admit(queue, Waiting(*newcomer), limit)
    held = {w.address: sum(1 for v in queue if v.address == w.address) for w in queue}
    if newcomer[0] not in held and any(n >= 2 for n in held.values()):
        # A first sign-in from an address with nothing waiting always gets a
        # place while another address holds two or more.
        assert admission.admitted
    if admission.displaced is not None:
        queue.pop(admission.displaced)
    if admission.admitted:
        queue.append(Waiting(*newcomer))
    assert len(queue) <= limit
