"""One-feature trees as bin tables: one branch-free search instead of a walk down a tree.

A tree whose every split is a numerical compare on the same feature is a step function of that feature: its
distinct (float-rounded, see codegen.py) thresholds t_0 < ... < t_{m-1} cut the line into m + 1 intervals,
each reached by one leaf, and NaN reaches one leaf too. A logistic scorecard is exactly such trees (one per
used feature, app/model/scorecard.py), and so is the scorecard part of a blend champion. The tree is
emitted as its thresholds (padded with +inf to a multiple of 8) and one value per interval plus the NaN
value; a row's interval is the number of thresholds below its value, `#{i : x > t_i}`, counted without
branches (the compiler vectorises the fixed-length loop). The leaf reached by interval k is found at
compile time by walking the tree with "x > t" true exactly for the thresholds of rank < k, and NaN by
following each node's NaN direction: the same leaf LightGBM reaches, added to the score in the same tree
order, so the sum stays bit-exact.

Only the tree's own function (tree<i>: single rows and the row-loop batch path) changes; QuickScorer and
the node tables keep these trees as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.model.c_emit import Emitter, c_double, c_float

PAD = 8
MAX_THRESHOLDS = 64  # beyond this a tree walk (log m compares) beats counting every threshold


@dataclass
class StepTree:
    feature: int
    thresholds: list[np.float32]  # ascending, distinct
    values: list[float]  # per interval 0..m, then the NaN value
    zero_value: float | None = None  # |x| <= 1e-35 (not NaN), when a Zero-missing split sends it its own way


def collect(em: Emitter, root: dict[str, Any]) -> StepTree | None:
    """The tree as a step function of one feature, or None when it splits on several features, has
    categorical splits, no split at all, or too many thresholds.

    A two-sided Zero-missing split (codegen.py) sends NaN and |x| <= 1e-35 to its default side and compares
    other values; the other splits' thresholds never fall inside that zero band (codegen.py moves them), so
    the whole band reaches one leaf, computed like the NaN one."""
    nodes: list[tuple[int, np.float32, bool, bool]] = []  # (feature, t, NaN goes left, two-sided Zero)

    def visit(node: dict[str, Any]) -> bool:
        if "leaf_value" in node:
            return True
        em.condition(node)
        if em.last_simple is not None:
            nodes.append((*em.last_simple, False))
        elif em.last_zero is not None:
            nodes.append((*em.last_zero, True))
        else:
            return False
        return visit(node["left_child"]) and visit(node["right_child"])

    if "leaf_value" in root or not visit(root):
        return None
    features = {f for f, _, _, _ in nodes}
    if len(features) != 1:
        return None
    ts = sorted({float(t) for _, t, _, _ in nodes})
    if len(ts) > MAX_THRESHOLDS:
        return None
    rank = {t: k for k, t in enumerate(ts)}
    it = iter(nodes)
    by_node: dict[int, tuple[int, float, bool, bool]] = {}  # id(node) -> (rank, t, NaN left, two-sided)

    def index(node: dict[str, Any]) -> None:
        if "leaf_value" in node:
            return
        _, t, nan_left, zero = next(it)
        by_node[id(node)] = (rank[float(t)], float(t), nan_left, zero)
        index(node["left_child"])
        index(node["right_child"])

    index(root)

    def leaf(case: int | str) -> float:
        """case: an interval k, "nan", or "zero" (the band |x| <= 1e-35)."""
        node = root
        while "leaf_value" not in node:
            r, t, nan_left, two_sided = by_node[id(node)]
            if case == "nan" or (case == "zero" and two_sided):
                right = not nan_left
            elif case == "zero":
                right = t < 0.0  # the band compares like 0.0 (thresholds are outside it)
            else:
                right = r < case  # x > t_r exactly when r < k
            node = node["right_child"] if right else node["left_child"]
        return float(node["leaf_value"])

    values = [leaf(k) for k in range(len(ts) + 1)] + [leaf("nan")]
    zero_value = leaf("zero") if any(z for _, _, _, z in nodes) else None
    return StepTree(next(iter(features)), [np.float32(t) for t in ts], values, zero_value)


def function(i: int, step: StepTree) -> list[str]:
    """C for tree<i>(x, n, acc) (the signature of codegen.py's tree functions) through the tree's bin table."""
    m = len(step.thresholds)
    padded = -(-m // PAD) * PAD
    ts = [c_float(t) for t in step.thresholds] + ["INFINITY"] * (padded - m)
    vals = [c_double(v) for v in step.values[:-1]]
    nan_value = c_double(step.values[-1])
    return [
        f"static const float BIN_T{i}[{padded}] __attribute__((aligned(32))) = {{{', '.join(ts)}}};",
        f"static const double BIN_V{i}[{m + 1}] = {{{', '.join(vals)}}};",
        f"CREDIT_TREE void tree{i}(const float *x, int64_t n, double *acc) {{ /* bins of feature {step.feature} */",
        "  for (int64_t r = 0; r < n; ++r, x += CREDIT_NF) {",
        f"    const float v = x[{step.feature}];",
        "    int k = 0;",
        f"    for (int j = 0; j < {padded}; ++j) k += v > BIN_T{i}[j];",
        f"    acc[r] += v != v ? {nan_value} : BIN_V{i}[k];"
        if step.zero_value is None
        else f"    acc[r] += v != v ? {nan_value} : fabsf(v) <= 1e-35f ? {c_double(step.zero_value)} : BIN_V{i}[k];",
        "  }",
        "}",
    ]


RUN_MAX_WIDTH = 16  # trees with more thresholds keep their own function
RUN_ROWS = 16  # rows a block in a run (tree-major inside the block)


def runs(steps: list[StepTree | None]) -> list[tuple[int, int]]:
    """[start, end) of each run of >= 2 consecutive trees that one loop can evaluate (one-feature trees
    without a zero band, at most RUN_MAX_WIDTH thresholds)."""
    out, start = [], None
    for i, s in enumerate([*steps, None]):
        ok = s is not None and s.zero_value is None and len(s.thresholds) <= RUN_MAX_WIDTH
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            if i - start >= 2:
                out.append((start, i))
            start = None
    return out


def run_function(name: str, steps: list[StepTree]) -> str:
    """C for `name(x, n, acc)`: the run's trees in order, each one branch-free search in a table of W
    thresholds (+inf padding), into a local sum (the same additions in the same order as tree by tree)."""
    w = max(-(-len(s.thresholds) // PAD) * PAD for s in steps)
    feats, ts, vals = [], [], []
    for s in steps:
        m = len(s.thresholds)
        feats.append(str(s.feature))
        ts += [c_float(t) for t in s.thresholds] + ["INFINITY"] * (w - m)
        vals += [c_double(v) for v in s.values[:-1]] + ["0.0"] * (w - m) + [c_double(s.values[-1])]
    k = len(steps)
    return "\n".join(
        [
            "#if defined(__SSE2__)",
            "#include <emmintrin.h>",
            "#endif",
            f"static const int32_t {name}_F[{k}] = {{{', '.join(feats)}}};",
            f"static const float {name}_T[{k * w}] __attribute__((aligned(32))) = {{{', '.join(ts)}}};",
            f"static const double {name}_V[{k * (w + 2)}] = {{{', '.join(vals)}}};",
            f"/* {k} one-feature trees (app/model/codegen_bins.py), each a search in {w} thresholds; tree-major",
            "   over blocks of rows: each row still adds its trees in tree order, and the rows' sums do not wait",
            "   on each other */",
            f"static inline int {name}_bin(float v, const float *T) {{",
            "#if defined(__SSE2__)",  # thresholds ascend: the compare mask is j ones, j = trailing ones
            "  const __m128 vv = _mm_set1_ps(v);",
            "  unsigned mask = 0;",
            f"  for (int c = 0; c < {w // 4}; ++c)",
            "    mask |= (unsigned)_mm_movemask_ps(_mm_cmpgt_ps(vv, _mm_load_ps(T + 4 * c))) << (4 * c);",
            f"  return v != v ? {w + 1} : __builtin_ctz(~mask);",
            "#else",
            "  int j = 0;",
            f"  for (int u = 0; u < {w}; ++u) j += v > T[u];",
            f"  return v != v ? {w + 1} : j;",
            "#endif",
            "}",
            f"static void {name}(const float *x, int64_t n, double *acc) {{",
            "  if (n == 1) { /* one row (score()): a local sum */",
            "    double a = acc[0];",
            f"    for (int t = 0; t < {k}; ++t)",
            f"      a += {name}_V[{w + 2} * t + {name}_bin(x[{name}_F[t]], {name}_T + {w} * t)];",
            "    acc[0] = a;",
            "    return;",
            "  }",
            f"  for (int64_t r0 = 0; r0 < n; r0 += {RUN_ROWS}) {{",
            f"    const int m = n - r0 < {RUN_ROWS} ? (int)(n - r0) : {RUN_ROWS};",
            "    const float *xb = x + r0 * CREDIT_NF;",
            "    double *ab = acc + r0;",
            f"    for (int t = 0; t < {k}; ++t) {{",
            f"      const float *T = {name}_T + {w} * t;",
            f"      const double *V = {name}_V + {w + 2} * t;",
            f"      const int32_t f = {name}_F[t];",
            "      for (int r = 0; r < m; ++r) ab[r] += V[" + name + "_bin(xb[r * CREDIT_NF + f], T)];",
            "    }",
            "  }",
            "}",
        ]
    )


def collapse(lines: list[str], spans: list[tuple[int, int]], arg: str) -> list[str]:
    """Call lines with each run's `tree<i>(x, ARG, acc);` lines (consecutive) replaced by one run call."""
    text = "\n".join(lines)
    for j, (a, b) in enumerate(spans):
        block = "\n".join(f"  tree{i}(x, {arg}, acc);" for i in range(a, b))
        text = text.replace(block, f"  bins_run{j}(x, {arg}, acc);")
    return text.split("\n") if text else []
