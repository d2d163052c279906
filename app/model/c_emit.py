"""The C expression of a LightGBM split and the if/else code of a tree, exact to LightGBM's own prediction.

One emitter (`Emitter`) writes the split conditions and node tables shared by every generated unit: the model's
batch and single-row code (app.model.codegen), QuickScorer (app.model.codegen_qs) and TreeSHAP
(app.model.codegen_shap). The rounding rules it follows are explained at the top of app/model/codegen.py.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from app.errors import CreditError

K_ZERO = float(np.float32(1e-35))  # LightGBM kZeroThreshold (a float constant)


class CodegenError(CreditError, ValueError):
    pass


def float_down(t: float) -> np.float32:
    """Largest float32 <= t (t a finite or infinite double)."""
    if math.isnan(t):
        raise CodegenError("NaN threshold")
    flt_max = float(np.finfo(np.float32).max)
    if t > flt_max:  # +inf stays +inf; a finite huge threshold rounds down to FLT_MAX
        return np.float32(np.inf) if math.isinf(t) else np.float32(flt_max)
    if t < -flt_max:  # the largest float below a huge negative threshold is -inf
        return np.float32(-np.inf)
    f = np.float32(t)
    if float(f) > t:
        f = np.nextafter(f, np.float32(-np.inf), dtype=np.float32)
    return f


def c_float(f: np.float32) -> str:
    v = float(f)
    if math.isinf(v):
        return "(-INFINITY)" if v < 0 else "INFINITY"
    return f"{v.hex()}f"


def c_double(v: float) -> str:
    if not math.isfinite(v):
        raise CodegenError(f"non-finite leaf value {v}")
    return v.hex()


class Emitter:
    def __init__(self, n_features: int) -> None:
        self.n_features = n_features
        self.thresholds: list[float] | None = None
        self.last_simple: tuple[int, np.float32, bool] | None = None
        self.last_cat: tuple[int, list[int]] | None = None  # (feature, bitset words) of a categorical split
        self.last_zero: tuple[int, np.float32, bool] | None = None  # (feature, t, default_left): two-sided Zero
        self.cat_words: list[int] = []  # every table node's bitset, concatenated (CAT_BITS)
        self.bitsets: list[str] = []
        self.n_nodes = 0

    def table(self, root: dict[str, Any]) -> tuple[list[str], list[str], int, list[str] | None] | None:
        """Branch-free node table for a tree whose splits are numerical compares or categorical sets.

        Nodes in preorder; a leaf is a node that points to itself, so walking `depth` steps from
        the root always ends on the row's leaf. A categorical node has a NaN threshold (so the compare
        sends every row right) and its bitset in CAT_BITS at the node's `credit_cat` entry. Returns
        (node initialisers, leaf values, depth, credit_cat initialisers or None without categorical
        splits), or None when the tree needs the general code (Zero-missing corner cases).
        """
        nodes: list[list[Any]] = []
        leaves: list[str] = []
        cats: list[str] = []
        has_cat = False
        depth = 0

        def visit(node: dict[str, Any], d: int) -> int | None:
            nonlocal depth, has_cat
            i = len(nodes)
            nodes.append([])
            cats.append("{0, 0}")
            if "leaf_value" in node:
                depth = max(depth, d)
                nodes[i] = [0, "0.0f", i, i]
                leaves.append(c_double(float(node["leaf_value"])))
                return i
            self.condition(node)
            simple = self.last_simple
            if simple is None and self.last_cat is not None:
                has_cat = True
                cat_f, words = self.last_cat
                cats[i] = f"{{{len(self.cat_words)}, {len(words)}}}"
                self.cat_words.extend(words)
                simple = (cat_f, None, False)
            if simple is None:
                return None
            leaves.append("0")
            f, tf, nan_left = simple
            left = visit(node["left_child"], d + 1)
            if left is None:
                return None
            right = visit(node["right_child"], d + 1)
            if right is None:
                return None
            nodes[i] = [2 * f + int(nan_left), "NAN" if tf is None else c_float(tf), right, left]
            return i

        if visit(root, 0) is None:
            return None
        rows = [f"{{{a}, {b}, {{{c}, {d}}}}}" for a, b, c, d in nodes]
        return rows, leaves, depth, cats if has_cat else None

    def condition(self, node: dict[str, Any]) -> str:
        """C expression, true when the row goes to the left child."""
        f = int(node["split_feature"])
        if not 0 <= f < self.n_features:
            raise CodegenError(f"split on feature {f} outside 0..{self.n_features - 1}")
        v = f"x[{f}]"
        dt = node["decision_type"]
        self.last_simple = None
        self.last_cat = None
        self.last_zero = None
        if dt == "==":
            cats = [int(c) for c in str(node["threshold"]).split("||") if c != ""]
            if any(c < 0 for c in cats):
                raise CodegenError("negative category in split")
            n_words = max(cats) // 32 + 1 if cats else 1
            words = [0] * n_words
            for c in cats:
                words[c // 32] |= 1 << (c % 32)
            name = f"cat{len(self.bitsets)}"
            self.bitsets.append(f"static const uint32_t {name}[{n_words}] = {{{', '.join(f'{w}u' for w in words)}}};")
            self.last_cat = (f, words)
            return f"cat_left({v}, {name}, {n_words})"
        if dt != "<=":
            raise CodegenError(f"unsupported decision type {dt!r}")
        t = float(node["threshold"])
        if self.thresholds is not None:
            exact = self.thresholds[int(node["split_index"])]
            if exact != t and not (abs(t) >= 1e300 and abs(exact) >= 1e300 and (t > 0) == (exact > 0)):
                raise CodegenError(f"model.txt threshold {exact!r} disagrees with dump_model {t!r}")
            t = exact
        missing = node.get("missing_type", "None")
        default_left = bool(node.get("default_left", False))
        tf = float_down(t)
        if missing in ("NaN", "None"):
            # NaN: default direction (NaN type) or where 0.0 goes (None type)
            nan_left = default_left if missing == "NaN" else t >= 0.0
            if -K_ZERO <= float(tf) < K_ZERO:
                # |v| <= 1e-35 reads as 0.0: with t in [-1e-35, 1e-35) the rule is still one compare,
                # against 1e-35 (t >= 0: tiny values go left) or just below -1e-35 (t < 0: they go right)
                tf = np.float32(K_ZERO) if t >= 0.0 else np.nextafter(np.float32(-K_ZERO), np.float32(-np.inf))
            self.last_simple = (f, tf, nan_left)
            return f"!({v} > {c_float(tf)})" if nan_left else f"({v} <= {c_float(tf)})"
        if missing != "Zero":
            raise CodegenError(f"unsupported missing type {missing!r}")
        # Zero type: NaN and |v| <= 1e-35 follow default_left; others compare
        zero_left = nan_left = default_left
        consistent = (float(tf) >= K_ZERO and default_left) or (float(tf) < -K_ZERO and not default_left)
        if consistent:
            self.last_simple = (f, tf, nan_left)
            return f"!({v} > {c_float(tf)})" if nan_left else f"({v} <= {c_float(tf)})"
        self.last_zero = (f, tf, default_left)
        return f"num_left({v}, {c_float(tf)}, {int(zero_left)}, {int(nan_left)})"

    def tree(self, node: dict[str, Any], indent: int, out: list[str]) -> None:
        pad = "  " * indent
        if "leaf_value" in node:
            out.append(f"{pad}v = {c_double(float(node['leaf_value']))};")
            return
        self.n_nodes += 1
        out.append(f"{pad}if ({self.condition(node)}) {{")
        self.tree(node["left_child"], indent + 1, out)
        out.append(f"{pad}}} else {{")
        self.tree(node["right_child"], indent + 1, out)
        out.append(f"{pad}}}")
