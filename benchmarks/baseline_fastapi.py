"""The baseline API, written the way the original app did it: FastAPI + pydantic, a SQLite
`SELECT *` per request and `Booster.predict` on one row. Run: uvicorn benchmarks.baseline_fastapi:app

Environment: CREDIT_DB (features database), CREDIT_MODEL_DIR (model.txt + manifest.json).
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

MODEL_DIR = Path(os.environ.get("CREDIT_MODEL_DIR", "compiled"))
DB = os.environ.get("CREDIT_DB", "data/credit.db")
booster = lgb.Booster(model_file=str(MODEL_DIR / "model.txt"))
manifest = json.loads((MODEL_DIR / "manifest.json").read_text())
app = FastAPI()


class Score(BaseModel):
    client_id: int
    probability: float
    decision: str
    threshold: float


@app.get("/clients/{client_id}/score", response_model=Score)
def score(client_id: int) -> Score:
    conn = sqlite3.connect(DB)
    try:
        row = conn.execute("SELECT * FROM features WHERE client_id = ?", (client_id,)).fetchone()
    finally:
        conn.close()
    if row is None:
        raise HTTPException(404, "unknown client")
    x = pd.DataFrame([np.frombuffer(row[1], dtype="<f4")], columns=manifest["features"])
    p = float(booster.predict(x)[0])
    decision = "refuse" if p >= manifest["threshold"] else "accept"
    return Score(client_id=client_id, probability=p, decision=decision, threshold=manifest["threshold"])
