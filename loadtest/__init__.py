"""hudong's load generator: ``python -m loadtest fanout|crossnode ...`` (or ``hudong-loadtest``).

Modules:

* ``wire``   — the client side of RFC 6455 that the generator needs: upgrade request,
  masked client frames, a frame splitter; hudong's subprotocol and messages come
  from ``protocol/`` so nothing on the wire is typed twice.
* ``procstat`` — server CPU and memory from ``/proc/<pid>`` (the process and its children).
* ``drain``  — a worker process of thousands of cheap viewers that read in bulk every
  ~100 ms and only walk frame headers and count.
* ``fanout`` — the scenario: one room, N viewers, P latency probes, one publisher.
* ``crossnode`` — one room on N nodes sharing a Redis it starts itself: cross-node
  latency and Redis commands per danmaku.

See loadtest/README.md ("Load testing") and BENCHMARKS.md for results.
"""
