"""A Dask client for the distributed commands (features, training, log merge): one place that starts it.

`dask_client(scheduler=..., workers=N)` connects to a running scheduler (`dask scheduler` +
`dask worker` started by hand, see docs/distributed.md) or starts a `LocalCluster` of N worker
processes on this machine, and tells `notify` where the Dask dashboard is (the live task stream,
memory per worker and progress of every job). `track()` is the terminal's progress bar over a set
of futures (a plain line every few seconds when standard error is not a terminal, app/progress.py).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from app.errors import CreditError


class ClusterError(CreditError, RuntimeError):
    """A Dask cluster that cannot be reached or has no workers."""


@contextlib.contextmanager
def dask_client(
    *,
    scheduler: str | None = None,
    workers: int = 2,
    threads_per_worker: int = 1,
    memory_limit: str | int = "auto",
    notify: Callable[[str], None] | None = None,
) -> Iterator[Any]:
    """A connected `distributed.Client`; the local cluster (if any) is closed on exit."""
    from distributed import Client, LocalCluster

    notify = notify or logging.getLogger(__name__).info
    cluster = None
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout="20s")
            except OSError as exc:
                raise ClusterError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        else:
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=threads_per_worker,
                processes=True,
                memory_limit=memory_limit,
                # a free port: 8787 may be another cluster's (the scheduler's HTTP server always listens)
                dashboard_address="127.0.0.1:0",
                host="127.0.0.1",
            )
            client = Client(cluster)
    except BaseException:
        if cluster is not None:
            cluster.close()
        raise
    try:
        n = len(client.scheduler_info(n_workers=-1)["workers"])
        if n == 0:
            raise ClusterError(f"no workers connected to {scheduler or 'the local cluster'}")
        where = scheduler or f"a local cluster ({workers} worker processes)"
        link = _dashboard_link(client)
        notify(f"Dask: {n} workers on {where}" + (f"; dashboard {link}" if link else ""))
        yield client
    finally:
        _close_quietly(client, cluster, notify)


def _close_quietly(client: Any, cluster: Any, notify: Callable[[str], None]) -> None:
    """Close the client and the local cluster; a close that times out (a worker process slow to exit on a loaded
    machine) is reported, never raised: the job's results are already in hand, and the cluster's processes are
    killed by the nanny anyway. Measured: a 100,000-client `credit features` lost 40 minutes of finished work
    when LocalCluster.close() timed out under a load average of 25."""
    for what, close in (("client", client.close), ("local cluster", cluster.close if cluster is not None else None)):
        if close is None:
            continue
        try:
            close()
        except (TimeoutError, OSError) as exc:
            notify(f"warning: closing the Dask {what} did not finish cleanly ({type(exc).__name__}: {exc}); ignored")


def _dashboard_link(client: Any) -> str | None:
    try:
        info = client.scheduler_info()
        if "dashboard" not in info.get("services", {}):
            return None
        return client.dashboard_link
    except (KeyError, AttributeError, OSError):
        return None


def worker_addresses(client: Any) -> list[str]:
    return sorted(client.scheduler_info(n_workers=-1)["workers"])


def track(
    futures: dict[Any, Any],
    *,
    desc: str,
    total: int | None = None,
    weight: Callable[[Any], int] | None = None,
    progress: bool = True,
) -> tuple[list[tuple[Any, Any]], list[tuple[Any, BaseException]]]:
    """Wait for every future of `futures` (future -> what it works on), with a progress bar.

    Returns ([(item, result)], [(item, exception)]) in completion order; `weight(item)` advances the
    bar (default 1 per future) so the bar can count clients or rows rather than tasks."""
    from distributed import as_completed
    from tqdm import tqdm

    weight = weight or (lambda _item: 1)
    done: list[tuple[Any, Any]] = []
    failed: list[tuple[Any, BaseException]] = []
    total = total if total is not None else sum(weight(item) for item in futures.values())
    with tqdm(total=total, desc=desc, disable=not progress or None, leave=False) as bar:
        for fut in as_completed(list(futures)):
            item = futures[fut]
            if fut.status == "finished":
                done.append((item, fut.result()))
            else:
                failed.append((item, fut.exception()))
            bar.update(weight(item))
    return done, failed
