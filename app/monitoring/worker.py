"""Heavy monitoring reports in their own process, off the API's serving path.

Evidently (pandas, plotly: seconds of CPU holding the GIL) and fairness over the whole log (pandas, fairlearn)
would make /healthz and GET score wait if they ran in a thread of the API process. The API starts
`python -m app.monitoring.worker KIND` with a JSON request on stdin and reads a JSON answer on stdout
(`{"ok": ...}` or `{"error": "..."}`); nothing is shared but the files, which the worker opens read-only.
The worker runs at a lower CPU priority (nice 10) than the API: serving first, reports with the CPU left.
Measured (benchmarks/bench_report_isolation.py, load 15-22 on 2 cores): GET score p99 +47 ms while reports are
built at nice 10, +112 ms at nice 0. The price is on a machine saturated by other work: there the reports take
minutes (a client waiting for one needs a long timeout).

    evidently: {"store", "model_dir", "since", "last", "html", "drift_share", "psi_threshold"} -> summary
               (the HTML page written to "html")
    fairness:  {"store", "data", "model_dir", "attributes", "since", "until", "min_group"} -> report

`run(kind, request, timeout)` is the asyncio side: it awaits the child without blocking the event loop and
kills it on timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path

from app.errors import CreditError

KINDS = ("evidently", "fairness")
NICE = 10  # the worker's CPU priority below the API's


class WorkerError(CreditError, RuntimeError):
    """The worker failed or timed out; the message is the domain's own when it raised one."""

    def __init__(self, message: str, kind: str = "failed") -> None:
        super().__init__(message)
        self.kind = kind  # "domain" (a DriftError/FairnessError message), "empty" (no decisions), "timeout", "failed"


def _evidently(req: dict) -> dict:
    from app.monitoring.drift import evidently_report
    from app.scoring.db import connect

    conn = connect(Path(req["store"]), readonly=True)
    try:
        return evidently_report(
            conn,
            Path(req["model_dir"]),
            since=req.get("since"),
            last=req.get("last"),
            html_path=Path(req["html"]),
            drift_share=req["drift_share"],
            psi_threshold=req["psi_threshold"],
        )
    finally:
        conn.close()


def _fairness(req: dict) -> dict:
    from app.monitoring import fairness_report

    return fairness_report.report(
        Path(req["store"]),
        Path(req["data"]),
        model_dir=Path(req["model_dir"]) if req.get("model_dir") else None,
        attributes=tuple(req["attributes"]),
        since=req.get("since"),
        until=req.get("until"),
        min_group=req["min_group"],
    )


def main() -> int:
    kind = sys.argv[1] if len(sys.argv) > 1 else ""
    with contextlib.suppress(OSError):  # below the API on a busy machine: serving first, reports with what is left
        os.nice(NICE)
    if kind not in KINDS:
        print(json.dumps({"error": f"unknown report {kind!r}: one of {', '.join(KINDS)}"}))
        return 2
    try:
        req = json.loads(sys.stdin.read())
        out = (_evidently if kind == "evidently" else _fairness)(req)
    except CreditError as exc:
        from app.scoring.fairness import NoDecisions

        print(json.dumps({"error": str(exc), "kind": "empty" if isinstance(exc, NoDecisions) else "domain"}))
        return 1
    print(json.dumps({"ok": out}, default=str))
    return 0


async def run(kind: str, request: dict, timeout: float) -> dict:
    """The worker's answer for `request`; raises WorkerError (kind "domain", "empty", "timeout" or "failed")."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.monitoring.worker", kind,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(json.dumps(request).encode()), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise WorkerError(f"the {kind} report took longer than {timeout:.0f} s", "timeout") from None
    except asyncio.CancelledError:  # the client went away: do not leave the child running
        proc.kill()
        await proc.wait()
        raise
    try:
        answer = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        raise WorkerError(f"the {kind} report failed (exit {proc.returncode}): {' | '.join(tail)}") from None
    if "error" in answer:
        raise WorkerError(answer["error"], answer.get("kind", "failed"))
    return answer["ok"]


if __name__ == "__main__":
    sys.exit(main())
