"""The model holder (app/service/model_holder.py) on its own, without a pipeline: what it says when there is no model,
a refused switch, the worker's record in the serving folder, and the watcher thread's stop. The switches between
real models are tested through the API (tests/test_challenger.py, tests/test_lifecycle.py)."""

from __future__ import annotations

import json
import threading

from app.config import Settings
from app.scoring.serving import SERVERS_DIR
from app.service.model_holder import WATCH_SECONDS, ModelHolder


def _holder(tmp_path, events):
    settings = Settings(db=str(tmp_path / "credit.db"), model_dir=str(tmp_path / "model"))
    (tmp_path / "model").mkdir()
    return ModelHolder(
        tmp_path / "model",
        tmp_path / "credit.db",
        settings,
        threading.Lock(),
        on_lost=lambda: events.append("lost"),
        on_switch=lambda: events.append("switched"),
    )


def _record(holder) -> dict:
    (path,) = (holder.model_dir / SERVERS_DIR).glob("*.json")
    return json.loads(path.read_text(encoding="utf-8"))


def test_without_a_model_the_holder_says_why_and_a_switch_is_refused_and_recorded(tmp_path):
    events: list[str] = []
    holder = _holder(tmp_path, events)
    assert holder.model_error == "not started" and holder.model is None
    holder.load()
    assert holder.bundles is None and holder.model is None and holder.challenger is None
    assert holder.model_error.startswith("model not loaded: ModelError") and "manifest" in holder.model_error
    holder.register()
    assert _record(holder)["champion"] is None and _record(holder)["refused"] is None
    holder.follow()  # nothing loaded: no library to stat, nothing lost
    holder.switching = True
    holder.switch_to(("bundles/new", None))
    assert holder.refused == ("bundles/new", None) and holder.pointer == ("bundles/new", None)
    assert holder.switch_error.startswith("not switched to bundles/new: ModelError")
    assert holder.switching is False and holder.bundles is None
    assert _record(holder)["refused"] == ["bundles/new", None]
    assert events == []  # neither a lost library nor a switch
    holder.stop()
    assert list((holder.model_dir / SERVERS_DIR).glob("*.json")) == []


def test_the_watcher_stops_when_asked(tmp_path):
    holder = _holder(tmp_path, [])
    holder.load()
    before = {t.ident for t in threading.enumerate() if t.name == "model-watch"}
    holder.start_watching()
    (watcher,) = [t for t in threading.enumerate() if t.name == "model-watch" and t.ident not in before]
    assert watcher.is_alive()
    holder.stop()
    watcher.join(timeout=10 * WATCH_SECONDS + 5)
    assert not watcher.is_alive()
