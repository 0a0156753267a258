"""hudong's load generator: ``python -m loadtest SCENARIO ...`` (or ``hudong-loadtest``).

The harness, under every scenario (no scenario imports another):

* ``harness`` — the run around a scenario: its command line, the servers up and down,
  the deadline, the progress line, the degrade poller, the result and exit status.
* ``servers`` — the servers under test: one spawned node (on the embedded default or a
  Redis), N nodes on a private Redis, or an attached one; ``--server-src``; loopback only.
* ``rest`` — the node's REST API: rooms, host tokens, polls and draws, ``/metrics``,
  the degrade level.
* ``viewers`` — the WebSocket clients (probes, members), the drain workers, an
  audience joined in slices, the publisher's send schedule.
* ``stats`` — percentiles, latencies inside a window, CPU over a window.
* ``results`` — the JSON result's common fields, checks and SLOs, the summary table.
* ``wire`` — the client side of RFC 6455; hudong's markers come from ``protocol/``.
* ``procstat`` — CPU and memory of a process tree from ``/proc``.
* ``drain`` — a worker process of thousands of cheap viewers that read in bulk every
  ~100 ms and only walk frame headers and count.

The scenarios: ``fanout``, ``crossnode``, ``votes``, ``reconnect``, ``slow``, ``draw``,
``mixed``. See loadtest/README.md and BENCHMARKS.md for results.
"""
