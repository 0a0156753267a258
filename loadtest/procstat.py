"""CPU time and memory of a process and its descendants, read from /proc (Linux).

CPU is utime + stime of every thread (``/proc/<pid>/stat`` fields 14 and 15), in
clock ticks; on loopback that includes the kernel's TCP work done in the server's
syscalls and softirqs (BENCHMARKS.md, "Caveats").
"""

from __future__ import annotations

import os
import platform
import sys

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after it.
    return raw[raw.rindex(b")") + 2 :].split()


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def cpu_user_sys(pids: list[int]) -> tuple[float, float]:
    """(user, system) CPU seconds of ``pids``."""
    user = system = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            user += int(fields[11])
            system += int(fields[12])
    return user / CLK_TCK, system / CLK_TCK


def memory_kb(pids: list[int]) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pids`` summed, in KiB."""
    rss, hwm = _summed(pids, "status", (b"VmRSS:", b"VmHWM:"))
    return rss, hwm


def _summed(pids: list[int], name: str, keys: tuple[bytes, ...]) -> list[int]:
    """Each of ``keys``' numbers (``b"VmRSS:"`` …) summed over ``/proc/<pid>/<name>`` of
    ``pids``; a process that cannot be read (gone meanwhile) counts nothing."""
    sums = [0] * len(keys)
    for pid in pids:
        try:
            with open(f"/proc/{pid}/{name}", "rb") as f:
                for line in f:
                    for i, key in enumerate(keys):
                        if line.startswith(key):
                            sums[i] += int(line.split()[1])
        except OSError:
            continue
    return sums


def core_times() -> dict[str, tuple[int, int, int]]:
    """cpuN -> (busy, softirq, total) jiffies since boot, from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                parts = line.split()
                vals = [int(v) for v in parts[1:9]]
                total = sum(vals)
                out[parts[0]] = (total - vals[3] - vals[4], vals[6], total)
    return out


def core_busy(
    before: dict[str, tuple[int, int, int]], after: dict[str, tuple[int, int, int]]
) -> dict[str, dict[str, float]]:
    res = {}
    for cpu, (busy, soft, total) in after.items():
        b0, s0, t0 = before.get(cpu, (0, 0, 0))
        dt = max(1, total - t0)
        res[cpu] = {
            "busy_pct": round(100 * (busy - b0) / dt, 1),
            "softirq_pct": round(100 * (soft - s0) / dt, 1),
        }
    return res


def machine() -> dict[str, object]:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
    }


def storage_written(pids: list[int]) -> int:
    """Bytes ``pids`` sent to the storage layer (``write_bytes`` of ``/proc/<pid>/io``:
    the pages their writes dirtied, whether or not synced yet)."""
    return _summed(pids, "io", (b"write_bytes:",))[0]
