"""The files a scoring request depends on are checked without a system call per request (issue 34,
app.service.file_watch): the data file's and the champion library's stamps are re-read only after inotify
reported a change, and a change is still seen by the very next request.

Laws: 100 scores served through the app make no stat of the data file or of the library; after that, a
re-import (a new file renamed over the old), an in-place write and a rewritten library are each seen by the next
request, with one stat; without a running event loop (a Service used outside its lifespan) every check is a stat."""

from __future__ import annotations

import asyncio
import os
import shutil
from unittest import mock

import apsw
import numpy as np
import pytest
from apiserver import OFFICER_KEY, served_in_process

from app.service.file_watch import FileStamps

AUTH = {"Authorization": f"Bearer {OFFICER_KEY}"}


@pytest.fixture
def served(pipeline, tmp_path):
    with served_in_process(pipeline, tmp_path) as (data, app, client):
        yield data, app.state.service, client


def first_ids(db, n: int) -> list[int]:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return [r[0] for r in conn.execute("SELECT client_id FROM features ORDER BY client_id LIMIT ?", (n,))]
    finally:
        conn.close()


class StatCount:
    """os.stat wrapped: the calls made on the watched paths (whatever form the path took)."""

    def __init__(self, *paths) -> None:
        self.watched = {os.path.abspath(p) for p in paths}
        self.calls: list[str] = []
        self.real = os.stat

    def __call__(self, path, *args, **kwargs):
        if isinstance(path, (str, os.PathLike)) and os.path.abspath(os.fspath(path)) in self.watched:
            self.calls.append(os.fspath(path))
        return self.real(path, *args, **kwargs)


def test_a_hundred_scores_make_no_stat_of_the_data_file_or_the_library(served):
    data, svc, client = served
    ids = first_ids(data.db, 10)
    assert client.get(f"/clients/{ids[0]}/score", headers=AUTH).status_code == 200  # connection open, watched
    assert svc.files.watching
    library = svc.model.library_path
    count = StatCount(data.db, library)
    with mock.patch.object(os, "stat", count):
        for i in range(100):
            answer = client.get(f"/clients/{ids[i % len(ids)]}/score", headers=AUTH)
            assert answer.status_code == 200, answer.text
    assert count.calls == []
    # the check is still made per request: with the watch off, the same requests stat both files each time
    svc.files.detach()
    count = StatCount(data.db, library)
    with mock.patch.object(os, "stat", count):
        for i in range(10):
            assert client.get(f"/clients/{ids[i]}/score", headers=AUTH).status_code == 200
    assert sorted(set(map(os.path.abspath, count.calls))) == sorted(map(os.path.abspath, (data.db, library)))
    assert len(count.calls) == 20


def test_a_reimport_after_many_requests_is_scored_at_the_next_request(served, tmp_path):
    data, svc, client = served
    cid = first_ids(data.db, 1)[0]
    for _ in range(50):
        before = client.get(f"/clients/{cid}/score", headers=AUTH)
        assert before.status_code == 200, before.text
    reads = svc.files.reads
    new = tmp_path / "new.db"  # what `credit ingest` does: a new file renamed over the old one
    shutil.copy(data.db, new)
    conn = apsw.Connection(str(new))
    try:
        (old,) = conn.execute("SELECT x FROM features WHERE client_id = ?", (cid,)).fetchall()[0]
        other = next(r[0] for r in conn.execute("SELECT x FROM features WHERE client_id != ?", (cid,)) if r[0] != old)
        conn.execute("UPDATE features SET x = ? WHERE client_id = ?", (other, cid))
    finally:
        conn.close()
    os.replace(new, data.db)
    after = client.get(f"/clients/{cid}/score", headers=AUTH)
    assert after.status_code == 200, after.text
    features = client.get(f"/clients/{cid}/features", headers=AUTH)
    assert features.status_code == 200, features.text
    got = np.array([np.nan if v is None else v for v in features.json()["features"].values()], dtype="<f4")
    assert got.tobytes() == other  # the new file's vector, read at once
    assert svc.files.reads > reads  # re-read because inotify said so
    first = svc.files.reads
    for _ in range(20):
        assert client.get(f"/clients/{cid}/score", headers=AUTH).status_code == 200
    assert svc.files.reads == first  # and then watched again: no more stats


def test_a_library_rewritten_after_many_requests_stops_scoring_at_the_next_request(served):
    data, svc, client = served
    cid = first_ids(data.db, 1)[0]
    for _ in range(50):
        assert client.get(f"/clients/{cid}/score", headers=AUTH).status_code == 200
    library = svc.model.library_path
    os.utime(library)  # touched, same bytes: still serving
    assert client.get(f"/clients/{cid}/score", headers=AUTH).status_code == 200
    with open(library, "r+b") as fh:  # rewritten in place: same inode, other bytes
        fh.seek(0, os.SEEK_END)
        fh.write(b"\0" * 64)
    answer = client.get(f"/clients/{cid}/score", headers=AUTH)
    assert answer.status_code == 503 and "changed on disk" in answer.text, answer.text


def test_outside_a_running_loop_every_check_is_a_stat(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x")
    files = FileStamps()
    for _ in range(5):
        assert files.stamp(path) is not None
    assert files.reads == 5
    path.write_bytes(b"xy")
    assert files.stamp(path)[2] == 2


def test_every_kind_of_change_marks_the_path_stale(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x")

    async def main() -> None:
        files = FileStamps()
        files.attach(asyncio.get_running_loop())
        try:

            async def turn() -> None:  # the loop reads the inotify descriptor (what a request's arrival waits for)
                for _ in range(3):
                    await asyncio.sleep(0)

            changes = [
                lambda: path.write_bytes(b"xy"),  # written
                lambda: os.utime(path, ns=(1, 1)),  # touched
                lambda: rename_over(path, b"new"),  # replaced (what `credit ingest` does)
                lambda: os.truncate(path, 0),  # truncated
                lambda: path.unlink(),  # deleted
                lambda: path.write_bytes(b"back"),  # created again
            ]
            last = files.stamp(path)
            for change in changes:
                for _ in range(10):
                    assert files.stamp(path) == last
                reads = files.reads
                change()
                await turn()
                now = files.stamp(path)
                assert files.reads == reads + 1
                assert now == os_stamp(path) and now != last
                last = now
            (tmp_path / "other").write_bytes(b"another file in the folder")
            await turn()
            reads = files.reads
            assert files.stamp(path) == last and files.reads == reads  # not stale: not its name
        finally:
            files.detach()
        assert not files.watching

    asyncio.run(main())


def rename_over(path, content: bytes) -> None:
    new = path.with_name(path.name + ".new")
    new.write_bytes(content)
    os.replace(new, path)


def os_stamp(path):
    from app.scoring.db import file_stamp

    return file_stamp(path)


def test_threads_reading_new_paths_at_once_never_see_a_stamp_before_it_is_read(tmp_path):
    """The stamps are read by the loop and by worker threads (sync routes): a path being read for the first time
    by one thread is never reported by another with a stamp not yet read (None: "no file", a library lost)."""
    import threading

    paths = [tmp_path / f"f{i}" for i in range(150)]
    for p in paths:
        p.write_bytes(b"x")
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    files = FileStamps()
    loop.call_soon_threadsafe(files.attach, loop)
    wrong: list = []
    try:
        while not files.watching:
            threading.Event().wait(0.01)
        start = threading.Barrier(4)

        def read_all() -> None:
            start.wait()
            for p in paths:
                got = files.stamp(p)
                if got != os_stamp(p):
                    wrong.append((p.name, got))

        readers = [threading.Thread(target=read_all) for _ in range(4)]
        for t in readers:
            t.start()
        for t in readers:
            t.join()
    finally:
        loop.call_soon_threadsafe(files.detach)
        loop.call_soon_threadsafe(loop.stop)
        runner.join()
        loop.close()
    assert wrong == []
