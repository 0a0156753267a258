"""Heartbeats and reaping without sockets: a timing wheel visits only the connections
whose check came due, pings are spread over the heartbeat period, and the silent, the
slow and those who never join are closed on time."""

from __future__ import annotations

from collections import Counter

from protocol.framing import server_ping
from server.config import Settings
from server.hub.upkeep import Upkeep
from server.metrics import Metrics
from tests.test_hub_parts import Conn

# The timings below are worked out for a 15 s heartbeat and a 45 s timeout.
SETTINGS = Settings().replace(hub={"heartbeat_s": 15.0, "heartbeat_timeout_s": 45.0})
HEARTBEAT = SETTINGS.hub.heartbeat_s
PING = server_ping()


def upkeep_with(conns: list[Conn], now: float = 0.0) -> tuple[Upkeep, list[Conn], set[Conn]]:
    """An upkeep tracking ``conns`` (joined, seen and opened at ``now``)."""
    closed: list[Conn] = []
    live: set[Conn] = set(conns)

    def detach(conn: Conn) -> None:
        closed.append(conn)
        live.discard(conn)

    upkeep = Upkeep(SETTINGS, Metrics(), detach, live)  # type: ignore[arg-type]
    for conn in conns:
        conn.last_seen = conn.opened_at = now
        if conn.room is None:
            conn.room = object()
        upkeep.track(conn, now)  # type: ignore[arg-type]
    return upkeep, closed, live


def pings(conn: Conn) -> int:
    return sum(1 for frame in conn.transport.written if frame == PING)


def answer(conns: list[Conn], now: float) -> None:
    """Every connection that got a ping answers it (its pong arrives at ``now``)."""
    for conn in conns:
        if conn.transport.written:
            conn.last_seen = now
            conn.transport.written.clear()


def test_each_connection_is_pinged_once_a_period_and_the_pings_are_spread():
    conns = [Conn() for _ in range(1500)]
    upkeep, closed, _ = upkeep_with(conns)
    per_second: Counter[int] = Counter()
    total: Counter[Conn] = Counter()
    for t in range(1, 61):
        upkeep.round(float(t))
        for conn in conns:
            if pings(conn):
                per_second[t] += 1
                total[conn] += 1
        answer(conns, float(t))
    assert not closed
    assert set(total.values()) == {4}  # 60 s: four pings each (the first within 15 s)
    # a connect wave is not pinged in one second: at most twice the even share
    assert max(per_second.values()) <= 2 * len(conns) / HEARTBEAT


def test_a_round_visits_only_the_connections_due():
    conns = [Conn() for _ in range(1500)]
    upkeep, _, _ = upkeep_with(conns)
    visited: Counter[float] = Counter()
    original = upkeep._visit

    def visit(conn: Conn, ping_at: float, now: float) -> None:
        visited[now] += 1
        original(conn, ping_at, now)  # type: ignore[arg-type]

    upkeep._visit = visit  # type: ignore[method-assign,assignment]
    for t in range(1, 16):
        upkeep.round(float(t))
    assert sum(visited.values()) == len(conns)  # each once in the first period
    assert max(visited.values()) <= 2 * len(conns) / HEARTBEAT  # about a 15th per round
    assert upkeep.waiting() == len(conns)  # and filed again for the next


def test_the_silent_are_closed_at_the_timeout_and_the_answering_kept():
    silent, alive = Conn(), Conn()
    upkeep, closed, live = upkeep_with([silent, alive])
    timeout = SETTINGS.hub.heartbeat_timeout_s  # 45 s
    for t in range(1, int(timeout)):
        upkeep.round(float(t))
        answer([alive], float(t))
    assert closed == [] and pings(silent) == 3  # pinged, never answered
    upkeep.round(timeout)
    assert closed == [silent] and silent.closed_with == "heartbeat_timeout"
    assert alive.closed_with is None and live == {alive}


def test_a_connection_heard_from_later_gets_its_deadline_moved():
    conn = Conn()
    upkeep, closed, _ = upkeep_with([conn])
    conn.last_seen = 40.0  # a command at 40 s, then silence
    for t in range(1, 85):
        upkeep.round(float(t))
    assert closed == []
    upkeep.round(85.0)
    assert conn.closed_with == "heartbeat_timeout"


def test_those_who_never_join_and_the_slow_are_closed_on_time():
    unjoined, slow, fine = Conn(), Conn(), Conn()
    upkeep, closed, _ = upkeep_with([slow, fine])
    unjoined.opened_at = unjoined.last_seen = 0.0
    upkeep._connections.add(unjoined)  # type: ignore[attr-defined]
    upkeep.track(unjoined, 0.0)  # type: ignore[arg-type]
    slow.paused, slow.paused_since = True, 0.5
    upkeep.note_paused(slow)  # type: ignore[arg-type]
    join_timeout, slow_timeout = SETTINGS.limits.join_timeout_s, SETTINGS.hub.slow_timeout_s
    for t in range(1, int(min(join_timeout, slow_timeout))):
        upkeep.round(float(t))
    assert closed == []
    upkeep.round(join_timeout)
    upkeep.round(slow_timeout + 1)
    assert (unjoined.closed_with, slow.closed_with) == ("join_timeout", "too_slow")
    assert fine.closed_with is None and set(closed) == {unjoined, slow}
    assert not upkeep.paused


def test_a_connection_that_drained_is_no_longer_watched_as_slow():
    conn = Conn()
    upkeep, _, _ = upkeep_with([conn])
    conn.paused, conn.paused_since = True, 0.0
    upkeep.note_paused(conn)  # type: ignore[arg-type]
    upkeep.round(1.0)
    conn.paused = False  # resume_writing
    upkeep.round(30.0)
    assert not upkeep.paused and conn.closed_with is None


def test_a_token_expiry_closes_its_connection_and_a_gone_one_is_forgotten():
    staying, leaving, forever = Conn(), Conn(), Conn()
    upkeep, _, live = upkeep_with([staying, leaving, forever])
    upkeep.expire(staying, 3.5)  # type: ignore[arg-type]
    upkeep.expire(leaving, 3.5)  # type: ignore[arg-type]
    upkeep.expire(forever, float("inf"))  # type: ignore[arg-type]  # a token without end
    live.discard(leaving)
    upkeep.forget(leaving)  # type: ignore[arg-type]  # went away: nothing held for it
    assert upkeep._expiry_slot == {staying: 4}
    for t in (1.0, 2.0, 3.0):
        upkeep.round(t)
        assert not staying.closing
    upkeep.round(4.0)
    assert staying.closed_with == "token_expired"
    assert not leaving.closing and not forever.closing
    assert upkeep._expiries == {} and upkeep._expiry_slot == {}
