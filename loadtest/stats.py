"""Figures from samples: percentiles, latencies inside a window, CPU over a window.

One percentile definition for every scenario (nearest rank on the sorted samples), so
that figures of different scenarios and runs compare.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from loadtest import procstat


class Timestamped(Protocol):
    """Anything that kept (send time, receipt time) pairs in ns: probes, the Redis tap."""

    @property
    def sent_ns(self) -> Iterable[int]: ...

    @property
    def recv_ns(self) -> Iterable[int]: ...


def pct(sorted_vals: Sequence[float], q: float) -> float | None:
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, round(q * (len(sorted_vals) - 1))))
    return sorted_vals[i]


def rnd(v: float | None, nd: int = 2) -> float | None:
    return None if v is None else round(v, nd)


def per(n: float, d: float, nd: int = 4) -> float | None:
    """``n / d`` rounded, None when there is nothing to divide by."""
    return round(n / d, nd) if d else None


def quantiles(values: Iterable[float], nd: int = 2) -> dict[str, Any]:
    """p50, p90, p99, max and the number of samples."""
    v = sorted(values)
    return {
        "p50": rnd(pct(v, 0.5), nd),
        "p90": rnd(pct(v, 0.9), nd),
        "p99": rnd(pct(v, 0.99), nd),
        "max": rnd(v[-1] if v else None, nd),
        "samples": len(v),
    }


def latencies_ms(sources: Iterable[Timestamped], t0_ns: int, t1_ns: int) -> list[float]:
    """Receipt − send time in ms of what was sent inside [t0_ns, t1_ns)."""
    return [
        (got - sent) / 1e6
        for src in sources
        for sent, got in zip(src.sent_ns, src.recv_ns, strict=True)
        if t0_ns <= sent < t1_ns
    ]


def cpu_window(
    before: tuple[float, float], after: tuple[float, float], dur: float
) -> dict[str, Any]:
    """CPU % of a process tree between two ``procstat.cpu_user_sys`` readings."""
    user, system = after[0] - before[0], after[1] - before[1]
    return {
        "cpu_s": round(user + system, 3),
        "cpu_pct": round(100 * (user + system) / dur, 1),
        "user_pct": round(100 * user / dur, 1),
        "sys_pct": round(100 * system / dur, 1),
    }


def summed(cpus: list[tuple[float, float]]) -> tuple[float, float]:
    """User and system CPU seconds of several processes (``procstat`` readings), added."""
    return sum(c[0] for c in cpus), sum(c[1] for c in cpus)


def generator_cpu(worker_pids: list[int]) -> tuple[float, float]:
    """CPU seconds of this process (probes, publisher) and of its drain workers."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime, sum(procstat.cpu_user_sys(worker_pids))


def generator_window(w0: dict[str, Any], w1: dict[str, Any], dur: float) -> dict[str, Any]:
    """The generator's own load and every core's busy time between two ``marks``."""
    return {
        "gen_cpu_pct": round(100 * (sum(w1["gen"]) - sum(w0["gen"])) / dur, 1),
        "gen_main_cpu_pct": round(100 * (w1["gen"][0] - w0["gen"][0]) / dur, 1),
        "gen_workers_cpu_pct": round(100 * (w1["gen"][1] - w0["gen"][1]) / dur, 1),
        "cores": procstat.core_busy(w0["cores"], w1["cores"]),
    }


def cores_text(cores: dict[str, dict[str, float]]) -> str:
    return ", ".join(
        f"{k} {v['busy_pct']}% ({v['softirq_pct']}% softirq)" for k, v in cores.items()
    )


def latency_text(x: dict[str, Any]) -> str:
    return f"p50 {x['p50']}  p90 {x['p90']}  p99 {x['p99']}  max {x['max']}"


class Rate:
    """Per-second rates of growing counters from one call to the next (progress lines)."""

    def __init__(self) -> None:
        self.prev: tuple[float, dict[str, float]] | None = None

    def __call__(self, **counters: float) -> dict[str, float] | None:
        """The rates since the last call; None on the first."""
        now = time.monotonic()
        out = None
        if self.prev is not None:
            t, before = self.prev
            dt = max(1e-6, now - t)
            out = {k: (v - before[k]) / dt for k, v in counters.items()}
        self.prev = (now, counters)
        return out
