"""Seed bagging: K LightGBM models fitted on the same rows with different seeds, averaged into one model.

On small data the row and feature subsampling of one fit is a large part of its error; the mean of
K fits with different seeds keeps the bias and divides that variance. The average is itself a
LightGBM model: the K models' trees one after another, every leaf value divided by K (the first tree
of each fit carries its starting log-odds, so that is averaged too). It is one `model.txt` like any
other, so compile, SQL, SHAP and the parity gate see nothing new.
"""

from __future__ import annotations

_END = "end of trees"


def _split(text: str) -> tuple[str, list[str], str]:
    """(header up to the first tree, tree blocks without their 'Tree=i' line, tail from 'end of trees')."""
    head, sep, rest = text.partition("\nTree=")
    if not sep:
        raise ValueError("not a LightGBM model text: no tree")
    body, sep, tail = rest.partition("\n" + _END)
    if not sep:
        raise ValueError("not a LightGBM model text: no 'end of trees'")
    blocks = [b.split("\n", 1)[1].strip("\n") for b in ("Tree=" + body).split("\nTree=")]
    return head + "\n", blocks, _END + tail


def _scaled(block: str, factor: float) -> str:
    out = []
    for line in block.split("\n"):
        key, sep, values = line.partition("=")
        if sep and key in ("leaf_value", "internal_value"):
            line = key + "=" + " ".join(repr(float(v) * factor) for v in values.split(" "))
        out.append(line)
    return "\n".join(out)


def average_models(texts: list[str], weights: list[float] | None = None) -> str:
    """One LightGBM model text whose raw score is the mean of the given models' raw scores (with weights:
    the sum of weight_k * raw score of model k; the header and tail are the first model's)."""
    if not texts:
        raise ValueError("no model to average")
    if weights is None:
        if len(texts) == 1:
            return texts[0]
        weights = [1.0 / len(texts)] * len(texts)
    if len(weights) != len(texts):
        raise ValueError(f"{len(weights)} weights for {len(texts)} models")
    parts = [_split(t) for t in texts]
    head, _blocks, tail = parts[0]
    weighted = [(w, block) for w, (_h, blocks, _t) in zip(weights, parts, strict=True) for block in blocks]
    trees = [f"Tree={i}\n" + _scaled(block, w) + "\n\n\n" for i, (w, block) in enumerate(weighted)]
    lines = head.split("\n")
    for j, line in enumerate(lines):
        if line.startswith("tree_sizes="):
            lines[j] = "tree_sizes=" + " ".join(str(len(t.encode("utf-8"))) for t in trees)
    # the tail's feature importances are the first model's: informational only, LightGBM recomputes them
    return "\n".join(lines) + "".join(trees) + tail
