"""The worker process of the heavy reports (app.monitoring.worker): JSON in and out, domain errors told as such
(no decisions apart), a timeout kills the child."""

from __future__ import annotations

import asyncio

import pytest

from app.monitoring import worker


def test_no_decisions_comes_back_as_an_empty_window_with_its_message(tmp_path):
    """The API answers 404 (not 503) on kind "empty", without reading the message's words."""
    job = {"store": str(tmp_path / "none.db"), "data": str(tmp_path / "none.db"), "attributes": ["gender"],
           "min_group": 30}  # fmt: skip
    with pytest.raises(worker.WorkerError) as err:
        asyncio.run(worker.run("fairness", job, 120))
    assert err.value.kind == "empty" and "no decisions logged yet" in str(err.value)


def test_an_unknown_report_and_a_timeout_are_errors(tmp_path):
    with pytest.raises(worker.WorkerError, match="unknown report 'nope'"):
        asyncio.run(worker.run("nope", {}, 120))
    with pytest.raises(worker.WorkerError) as err:
        asyncio.run(worker.run("evidently", {}, 0.05))  # the child cannot even start in 50 ms
    assert err.value.kind == "timeout" and "longer than" in str(err.value)
