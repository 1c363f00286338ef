"""Load tests: a venue under locust load, then a consistency check of what happened.

- ``loadtests.host``: runs one venue (embedded SQLite + in-process EVM, or anvil) with load-test
  participants; prints its address and key file, then answers ``check`` with its own view.
- ``loadtests.locustfile``: websocket market makers, REST investors, market-data subscribers.
- ``loadtests.check``: pure consistency rules over the venue's view and what clients observed.
- ``loadtests.run``: the driver (``python -m loadtests.run``): host + locust per load point,
  results table, JSON, consistency verdict.
- ``loadtests.openloop``: the open-loop generator (``python -m loadtests.openloop``): fixed offered
  rates of the same mix in plain asyncio, latency from the scheduled send time, percentiles from
  ``loadtests.histogram``, the consistency check after every point, stop at saturation.
- ``loadtests.histogram``: log-bucketed latency histogram with a stated relative error.
- ``loadtests.cli``: the runners' shared ``main`` (arguments, run, summary, ``--out`` JSON, exit code).

Exceptions::

    LoadTestError              the load test could not run (host or locust failed, bad arguments)
"""

from __future__ import annotations


class LoadTestError(Exception):
    """The load test could not run (the message says which part failed and why)."""


__all__ = ["LoadTestError"]
