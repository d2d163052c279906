"""Emit C for a LightGBM binary model: one NaN-aware comparison per node, rows in blocks, tree-major.

Input is `Booster.dump_model()` (a dict). The emitted file implements the C ABI of docs/contracts.md
(credit_num_features, credit_predict_row, credit_predict_batch, credit_model_id, credit_threshold).

Exactness with LightGBM's own prediction (include/LightGBM/tree.h, src/c_api.cpp):
- LightGBM reads a float32 row, converts each value to double, and drops values with
  |v| <= kZeroThreshold (1e-35f) unless NaN (they become 0.0). It then tests
  `fval <= threshold` in double. For a float `v` and a double `t`, `v <= t` holds exactly when
  `v <= t_down` where `t_down` is the largest float <= t, so thresholds are emitted rounded down to
  float (hex literals, exact) and compared in float. NaN compares false either way.
- missing_type NaN: NaN follows default_left. `!(v > t)` sends NaN left, `v <= t` sends it right.
- missing_type None: NaN becomes 0.0, so NaN goes where 0.0 goes.
- missing_type Zero: NaN and |v| <= 1e-35 follow default_left.
- Values with |v| <= 1e-35 count as 0.0: only matters when the threshold lies in [-1e-35, 1e-35);
  such thresholds are moved to 1e-35 (t >= 0) or just below -1e-35 (t < 0), still one compare.
  Only missing_type Zero splits whose default side does not contain 0 need a two-sided test.
- Batches use branch-free node tables walked tree-major over blocks of rows, or QuickScorer
  (codegen_qs.py, AVX2), or a loop over single rows (BATCH_PATHS; `credit compile` times them);
  single rows use nested if/else (all generated from the same split rules).
- Categorical: NaN, negative ints and values beyond int range go right; otherwise left if
  (int)v is in the node's bitset.
"""

from __future__ import annotations

import math
from typing import Any

from app.model import codegen_bins, codegen_qs
from app.model.c_emit import K_ZERO, CodegenError, Emitter, c_double, c_float, float_down  # noqa: F401 (re-exported)

_Emitter = Emitter  # the name codegen_shap.py uses

DEFAULT_BLOCK = 16
TREE_GROUP = 8  # single rows through node tables: this many trees walked side by side
# single rows take the node tables above this many table nodes (the if/else code no longer fits
# the caches: measured on 1000 trees x 63 leaves), nested if/else below it
ROW_TABLE_MIN_NODES = 20_000
# batches: node tables over blocks of rows, or a loop over single rows; `credit compile` times both
BATCH_PATHS = ("tables", "rows", "qs")  # index = credit_predict_batch_via's path argument


def thresholds_from_model_text(text: str) -> list[list[float]]:
    """Per tree, the `threshold=` array of model.txt (indexed by split_index).

    dump_model() writes +-inf thresholds as +-1e300 (Common::AvoidInf), which would send a +inf input
    the wrong way; model.txt keeps `inf`, so exact thresholds are taken from there.
    """
    out: list[list[float]] = []
    current: list[float] | None = None
    for line in text.splitlines():
        if line.startswith("Tree="):
            current = []
            out.append(current)
        elif current is not None and line.startswith("threshold="):
            current.extend(float(v) for v in line[len("threshold=") :].split())
        elif line.startswith("end of trees"):
            break
    return out


# The two non-table split rules, shared by every unit that evaluates `_Emitter.condition` expressions
# (the model units here and the TreeSHAP unit of codegen_shap.py).
DECISION_HELPERS = r"""static inline int cat_left(float v, const uint32_t *bits, int n_words) {
  if (!(v > -1.0f && v < 2147483648.0f)) return 0; /* NaN, negative, beyond int: right */
  int c = (int)v;
  return (c / 32) < n_words && ((bits[c / 32] >> (c % 32)) & 1u);
}

static inline int num_left(float v, float t, int zero_left, int nan_left) {
  if (isnan(v)) return nan_left;
  if (fabsf(v) <= 1e-35f) return zero_left;
  return v <= t;
}
"""

# Node-table walks for trees with categorical splits: a node with a NaN threshold is categorical
# (numerical thresholds are never NaN), its bitset at C[node] in B.
_CAT_WALKS = r"""
typedef struct { uint32_t off, n_words; } credit_cat;

/* 1 when v's category is in the node's bitset; 0 for numerical nodes (n_words 0, their compare decides;
   a categorical node's NaN threshold makes its compare 0). Branch-free: selects, no jumps. */
static inline int cat_bit(float v, credit_cat cc, const uint32_t *B) {
  const uint32_t ok = (uint32_t)(v > -1.0f) & (uint32_t)(v < 2147483648.0f); /* NaN, negative, beyond int: right */
  uint32_t bits;
  float vc;
  memcpy(&bits, &v, sizeof bits);
  bits &= 0u - ok; /* v, or +0.0f when not ok: an integer mask, so no jump */
  memcpy(&vc, &bits, sizeof vc);
  const uint32_t c = (uint32_t)(int)vc;
  const uint32_t in = ok & (uint32_t)((c >> 5) < cc.n_words);
  const uint32_t word = B[cc.off + ((c >> 5) & (0u - in))];
  return (int)(in & (word >> (c & 31u)));
}

static __attribute__((noinline)) void walk_full_cat(const credit_node *T, const credit_cat *C, const uint32_t *B,
                                                    const double *L, int depth, const float *x, double *acc) {
  int32_t idx[CREDIT_BLOCK] = {0};
  for (int d = 0; d < depth; ++d) {
    for (int r = 0; r < CREDIT_BLOCK; ++r) {
      const credit_node *nd = T + idx[r];
      const float v = x[r * CREDIT_NF + (nd->f >> 1)];
      idx[r] = nd->c[(v <= nd->t) | ((v != v) & nd->f) | cat_bit(v, C[idx[r]], B)];
    }
  }
  for (int r = 0; r < CREDIT_BLOCK; ++r) acc[r] += L[idx[r]];
}

static __attribute__((noinline)) void walk_part_cat(const credit_node *T, const credit_cat *C, const uint32_t *B,
                                                    const double *L, int depth, const float *x, int n,
                                                    double *acc) {
  int32_t idx[CREDIT_BLOCK] = {0};
  for (int d = 0; d < depth; ++d) {
    for (int r = 0; r < n; ++r) {
      const credit_node *nd = T + idx[r];
      const float v = x[r * CREDIT_NF + (nd->f >> 1)];
      idx[r] = nd->c[(v <= nd->t) | ((v != v) & nd->f) | cat_bit(v, C[idx[r]], B)];
    }
  }
  for (int r = 0; r < n; ++r) acc[r] += L[idx[r]];
}
"""

_PRELUDE = r"""/* Generated by app/model/codegen.py from LightGBM model %(model_id)s. Do not edit. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define CREDIT_NF %(nf)d
#define CREDIT_BLOCK %(block)d
#define CREDIT_GROUP %(group)d
#define CREDIT_EXPORT __attribute__((visibility("protected"))) /* exported; calls inside bind here */
#define CREDIT_TREE __attribute__((visibility("hidden"), noinline))

%(helpers)s
/* f = 2 * feature + (1 if NaN goes left); c[1] = left child, c[0] = right child (tree-relative). */
typedef struct { int32_t f; float t; int32_t c[2]; } credit_node;

/* One tree, a block of rows, tree-major and branch-free: `depth` steps, each a load + compare per row. */
static __attribute__((noinline)) void walk_full(const credit_node *T, const double *L, int depth, const float *x,
                                                double *acc) {
  int32_t idx[CREDIT_BLOCK] = {0};
  for (int d = 0; d < depth; ++d) {
    for (int r = 0; r < CREDIT_BLOCK; ++r) {
      const credit_node *nd = T + idx[r];
      const float v = x[r * CREDIT_NF + (nd->f >> 1)];
      idx[r] = nd->c[(v <= nd->t) | ((v != v) & nd->f)];
    }
  }
  for (int r = 0; r < CREDIT_BLOCK; ++r) acc[r] += L[idx[r]];
}

static __attribute__((noinline)) void walk_part(const credit_node *T, const double *L, int depth, const float *x,
                                                int n, double *acc) {
  int32_t idx[CREDIT_BLOCK] = {0};
  for (int d = 0; d < depth; ++d) {
    for (int r = 0; r < n; ++r) {
      const credit_node *nd = T + idx[r];
      const float v = x[r * CREDIT_NF + (nd->f >> 1)];
      idx[r] = nd->c[(v <= nd->t) | ((v != v) & nd->f)];
    }
  }
  for (int r = 0; r < n; ++r) acc[r] += L[idx[r]];
}
"""

_EPILOGUE = r"""
/* One row, up to CREDIT_GROUP trees side by side (absolute node indices), so that their independent
   load chains overlap; trees are added in order, as in the other paths. */
static __attribute__((noinline)) void walk_trees(const int32_t *root, int g, int depth, const float *x,
                                                 double *acc) {
  int32_t idx[CREDIT_GROUP];
  for (int k = 0; k < g; ++k) idx[k] = root[k];
  for (int d = 0; d < depth; ++d) {
    for (int k = 0; k < g; ++k) {
      const credit_node *nd = NODES + idx[k];
      const float v = x[nd->f >> 1];
      idx[k] = root[k] + nd->c[(v <= nd->t) | ((v != v) & nd->f)];
    }
  }
  for (int k = 0; k < g; ++k) *acc += LEAVES[idx[k]];
}

static const char credit_id_str[] = "%(model_id)s";

/* one row at a time (predict_row): nested compares, the branch predictor runs ahead */
static void credit_rows(const float *x, int64_t n, double *acc) {
%(calls)s
}

/* one row through the node tables, trees in groups (large models) */
static void credit_row_tables(const float *x, double *acc) {
%(row_calls)s
}

/* blocks of CREDIT_BLOCK rows (predict_batch): node tables where possible */
static void credit_block_full(const float *x, double *acc) {
%(full_calls)s
}

static void credit_block_part(const float *x, int n, double *acc) {
%(part_calls)s
}

static double credit_link(double raw) {
%(link)s
}

CREDIT_EXPORT int32_t credit_num_features(void) { return CREDIT_NF; }
CREDIT_EXPORT const char *credit_model_id(void) { return credit_id_str; }
CREDIT_EXPORT double credit_threshold(void) { return %(threshold)s; }
CREDIT_EXPORT const char *credit_manifest_sha256(void) { return "%(manifest_sha256)s"; }
/* The decision rule (app/scoring/bundle.py `refuses` is the same rule in Python; a test proves they agree). */
CREDIT_EXPORT int credit_refuses(double p, double threshold) { return p >= threshold; }

CREDIT_EXPORT double credit_predict_row(const float *x) {
  double acc[1] = {0.0};
  %(row_fn)s;
  return credit_link(acc[0]);
}

/* batches through the node tables, blocks of CREDIT_BLOCK rows, tree-major */
static void credit_batch_tables(const float *x, int64_t n, double *out) {
  for (int64_t i = 0; i < n; i += CREDIT_BLOCK) {
    int64_t m = n - i < CREDIT_BLOCK ? n - i : CREDIT_BLOCK;
    double acc[CREDIT_BLOCK] = {0.0};
    if (m == CREDIT_BLOCK)
      credit_block_full(x + i * CREDIT_NF, acc);
    else
      credit_block_part(x + i * CREDIT_NF, (int)m, acc);
    for (int64_t r = 0; r < m; ++r) out[i + r] = credit_link(acc[r]);
  }
}

/* batches as a loop over single rows (faster for small models, whose if/else code stays in cache) */
static void credit_batch_rows(const float *x, int64_t n, double *out) {
  for (int64_t i = 0; i < n; ++i) out[i] = credit_predict_row(x + i * CREDIT_NF);
}

/* QuickScorer (app/model/codegen_qs.py) */
%(qs_defs)s
static void credit_batch_qs(const float *x, int64_t n, double *out) {
%(qs_body)s
}

/* every batch path, for `credit compile` to time them on this machine (path = index in BATCH_PATHS) */
CREDIT_EXPORT void credit_predict_batch_via(int32_t path, const float *x, int64_t n, double *out) {
  if (path == 2)
    credit_batch_qs(x, n, out);
  else if (path == 1)
    credit_batch_rows(x, n, out);
  else
    credit_batch_tables(x, n, out);
}

/* the path chosen at compile time (manifest library.batch_path) */
CREDIT_EXPORT void credit_predict_batch(const float *x, int64_t n, double *out) {
  %(batch_fn)s(x, n, out);
}
"""


def parse_sigmoid(objective: str) -> float:
    parts = objective.split()
    if not parts or parts[0] != "binary":
        raise CodegenError(f"only binary models are supported, got objective {objective!r}")
    for p in parts[1:]:
        if p.startswith("sigmoid:"):
            return float(p.split(":", 1)[1])
    return 1.0


def link_body(sigmoid: float, calibration: tuple[float, float]) -> str:
    """Body of credit_link(raw): LightGBM's sigmoid, then the manifest's Platt map p = sigmoid(a * margin + b).

    The identity map (a = 1, b = 0) emits LightGBM's own expression, so an uncalibrated model stays
    bit-identical to Booster.predict. Otherwise the order of operations is that of
    app.model.calibration.apply(sigmoid * raw), which the parity gate compares against.
    """
    a, b = (float(v) for v in calibration)
    if not (math.isfinite(a) and math.isfinite(b)) or a <= 0:
        raise CodegenError(f"calibration must have a finite slope a > 0 and a finite b, got a={a}, b={b}")
    if a == 1.0 and b == 0.0:
        return f"  double p = 1.0 / (1.0 + exp(-{c_double(sigmoid)} * raw));\n  return p;"
    return (
        f"  double margin = {c_double(sigmoid)} * raw;\n"
        f"  double p = 1.0 / (1.0 + exp(-({c_double(a)} * margin + {c_double(b)})));\n"
        "  return p;"
    )


def generate_c(dump: dict[str, Any], **kwargs: Any) -> str:
    """C source for the whole model as one file (see generate_units)."""
    return generate_units(dump, parts=0, **kwargs)[0]


class _Trees:
    """The generated code's pieces, filled tree by tree: each tree's if/else function, its calls on each path
    (every row, a full block, a part block, single rows), its node table rows and the QuickScorer and bin-table
    forms; table trees are walked in groups of TREE_GROUP for single rows."""

    def __init__(self, em: _Emitter, *, use_tables: bool, use_bins: bool) -> None:
        self.em, self.use_tables, self.use_bins = em, use_tables, use_bins
        self.bodies: list[list[str]] = []
        self.calls: list[str] = []
        self.full_calls: list[str] = []
        self.part_calls: list[str] = []
        self.table_nodes: list[str] = []
        self.table_leaves: list[str] = []
        self.table_cats: list[str] = []  # credit_cat per table node, once a tree with categorical splits is seen
        self.row_calls: list[str] = []
        self.qs_trees: list[codegen_qs.QSTree | None] = []
        self.groups: list[str] = []
        self.pending: list[tuple[int, int]] = []  # (root offset, depth) of table trees not yet in a group
        self.steps: list[codegen_bins.StepTree | None] = []  # one-feature trees (bin tables), None for the others

    def flush(self) -> None:
        if self.pending:
            name = f"GRP{len(self.groups)}"
            self.groups.append(f"static const int32_t {name}[] = {{{', '.join(str(o) for o, _ in self.pending)}}};")
            depth = max(d for _, d in self.pending)
            self.row_calls.append(f"  walk_trees({name}, {len(self.pending)}, {depth}, x, acc);")
            self.pending.clear()

    def add(self, i: int, tree: dict[str, Any]) -> None:
        """Tree i: its function, its calls, and its table rows when it can be a table."""
        step = codegen_bins.collect(self.em, tree) if self.use_bins else None
        self.steps.append(step)
        self.bodies.append(self._function(i, tree, step))
        self.calls.append(f"  tree{i}(x, n, acc);")
        self.qs_trees.append(codegen_qs.collect(self.em, tree))
        tab = self.em.table(tree) if self.use_tables else None
        if tab is None:
            self.full_calls.append(f"  tree{i}(x, CREDIT_BLOCK, acc);")
            self.part_calls.append(f"  tree{i}(x, n, acc);")
            self._single_row_function(i)
        else:
            self._table(i, tab, one_feature=step is not None)

    def _function(self, i: int, tree: dict[str, Any], step: codegen_bins.StepTree | None) -> list[str]:
        if step is not None:  # a one-feature tree (a scorecard's): one branch-free search in its bin table
            return list(codegen_bins.function(i, step))
        body = [
            f"CREDIT_TREE void tree{i}(const float *x, int64_t n, double *acc) {{",
            "  for (int64_t r = 0; r < n; ++r, x += CREDIT_NF) {",
            "    double v;",
        ]
        self.em.tree(tree, 2, body)
        return [*body, "    acc[r] += v;", "  }", "}"]

    def _single_row_function(self, i: int) -> None:
        """Single rows take tree i's own function (after the group of table trees before it)."""
        self.flush()
        self.row_calls.append(f"  tree{i}(x, 1, acc);")

    def _table(self, i: int, tab: tuple, *, one_feature: bool) -> None:
        rows, leaves, depth, cats = tab
        off = len(self.table_nodes)
        if cats is not None and len(self.table_cats) < off:  # the first categorical tree: pad the trees before
            self.table_cats.extend(["{0, 0}"] * off)
        if cats is not None or self.table_cats:
            self.table_cats.extend(cats or ["{0, 0}"] * len(rows))
        self.table_nodes.extend(rows)
        self.table_leaves.extend(leaves)
        if cats is not None:  # single rows of a categorical tree take its if/else code
            cat_args = f"NODES + {off}, CATS + {off}, CAT_BITS, LEAVES + {off}, {depth}, x"
            self.full_calls.append(f"  walk_full_cat({cat_args}, acc);")
            self.part_calls.append(f"  walk_part_cat({cat_args}, n, acc);")
            self._single_row_function(i)
            return
        self.full_calls.append(f"  walk_full(NODES + {off}, LEAVES + {off}, {depth}, x, acc);")
        self.part_calls.append(f"  walk_part(NODES + {off}, LEAVES + {off}, {depth}, x, n, acc);")
        if one_feature:  # single rows: the bin table
            self._single_row_function(i)
            return
        self.pending.append((off, depth))
        if len(self.pending) == TREE_GROUP:
            self.flush()

    def table_lines(self, bin_runs: list[str]) -> list[str]:
        """The node and leaf tables, the single-row groups, the bin-table runs and the categorical tables."""
        lines = [
            f"static const credit_node NODES[{max(len(self.table_nodes), 1)}] = {{",
            *(f"  {r}," for r in self.table_nodes or ["{0, 0.0f, {0, 0}}"]),
            "};",
            f"static const double LEAVES[{max(len(self.table_leaves), 1)}] = {{",
            *(f"  {v}," for v in self.table_leaves or ["0"]),
            "};",
            *self.groups,
            *bin_runs,
        ]
        if self.table_cats:
            lines += [
                _CAT_WALKS,
                f"static const credit_cat CATS[{len(self.table_cats)}] = {{{', '.join(self.table_cats)}}};",
                f"static const uint32_t CAT_BITS[{max(len(self.em.cat_words), 1)}] = "
                f"{{{', '.join(f'{w}u' for w in self.em.cat_words) or '0u'}}};",
            ]
        return lines


def _check_dump(dump: dict[str, Any]) -> None:
    """CodegenError for a model this generator cannot translate."""
    if dump.get("num_tree_per_iteration", 1) != 1 or dump.get("num_class", 1) != 1:
        raise CodegenError("only single-output (binary) models are supported")
    if dump.get("average_output"):
        raise CodegenError("random-forest (average_output) models are not supported")
    if any(info.get("is_linear") for info in dump["tree_info"]):
        raise CodegenError("linear trees are not supported")


def _chosen_row_path(row_path: str, table_nodes: int, batch_path: str, threshold: float) -> str:
    """The single-row path ("auto": the tables from ROW_TABLE_MIN_NODES nodes on); CodegenError for a bad choice."""
    if row_path == "auto":
        row_path = "tables" if table_nodes >= ROW_TABLE_MIN_NODES else "ifelse"
    if row_path not in ("tables", "ifelse"):
        raise CodegenError(f"row_path must be auto, tables or ifelse, got {row_path!r}")
    if batch_path not in BATCH_PATHS:
        raise CodegenError(f"batch_path must be one of {', '.join(BATCH_PATHS)}, got {batch_path!r}")
    if not math.isfinite(threshold):
        raise CodegenError("threshold is not finite")
    return row_path


def _split(
    head: str, bitsets: list[str], tables: list[str], bodies: list[list[str]], tail: str, parts: int
) -> list[str]:
    """One unit (parts <= 0), or the main unit and `parts` units of tree functions."""
    n_trees = len(bodies)
    if parts <= 0:
        return ["\n".join([head, *bitsets, *tables, "", *(line for b in bodies for line in b), tail])]
    decls = [f"CREDIT_TREE void tree{i}(const float *x, int64_t n, double *acc);" for i in range(n_trees)]
    units = ["\n".join([head, *tables, "", *decls, tail])]
    parts = max(1, min(parts, n_trees or 1))
    for k in range(parts):
        chunk = [line for b in bodies[k * n_trees // parts : (k + 1) * n_trees // parts] for line in b]
        units.append("\n".join([head, *bitsets, "", *chunk, ""]))
    return units


def generate_units(
    dump: dict[str, Any],
    *,
    model_id: str,
    threshold: float,
    manifest_sha256: str = "",
    block: int = DEFAULT_BLOCK,
    model_text: str | None = None,
    use_tables: bool = True,
    parts: int = 2,
    row_path: str = "auto",
    calibration: tuple[float, float] = (1.0, 0.0),
    batch_path: str = "tables",
    use_bins: bool = True,
) -> list[str]:
    """C translation units from `Booster.dump_model()` (+ model.txt for exact thresholds).

    [main, trees_0, ..., trees_{parts-1}]: main has the node tables, the batch path and the exported
    ABI; the others hold the per-tree if/else functions (single rows, and trees that cannot be
    tables), split so that they compile in parallel.
    """
    _check_dump(dump)
    sigmoid = parse_sigmoid(str(dump.get("objective", "")))
    nf = int(dump["max_feature_idx"]) + 1
    em = _Emitter(nf)
    exact = thresholds_from_model_text(model_text) if model_text is not None else None
    if exact is not None and len(exact) != len(dump["tree_info"]):
        raise CodegenError(f"model.txt has {len(exact)} trees, dump_model {len(dump['tree_info'])}")
    trees = _Trees(em, use_tables=use_tables, use_bins=use_bins)
    for i, info in enumerate(dump["tree_info"]):
        em.thresholds = exact[i] if exact is not None else None
        trees.add(i, info["tree_structure"])
    trees.flush()
    row_path = _chosen_row_path(row_path, len(trees.table_nodes), batch_path, threshold)
    head = _PRELUDE % {"model_id": model_id, "nf": nf, "block": block, "group": TREE_GROUP, "helpers": DECISION_HELPERS}
    # runs of one-feature trees (a blend's scorecard part): one loop over their bin tables, in tree order, for
    # single rows, the row-loop batch and inside QuickScorer's sum
    spans = codegen_bins.runs(trees.steps)
    qs_trees, calls, row_calls = trees.qs_trees, trees.calls, trees.row_calls
    for a, b in spans:
        qs_trees[a:b] = [None] * (b - a)
    qs_defs, qs_body = codegen_qs.emit(qs_trees, nf)
    if spans:
        qs_defs = "\n".join(codegen_bins.collapse(qs_defs.split("\n"), spans, "m"))
        calls = codegen_bins.collapse(calls, spans, "n")
        row_calls = codegen_bins.collapse(row_calls, spans, "1")
    bin_runs = [
        codegen_bins.run_function(f"bins_run{j}", [trees.steps[i] for i in range(a, b)])
        for j, (a, b) in enumerate(spans)
    ]
    tail = _EPILOGUE % {
        "qs_defs": qs_defs,
        "qs_body": qs_body,
        "model_id": model_id,
        "calls": "\n".join(calls),
        "full_calls": "\n".join(trees.full_calls),
        "part_calls": "\n".join(trees.part_calls),
        "row_calls": "\n".join(row_calls),
        "row_fn": "credit_row_tables(x, acc)" if row_path == "tables" else "credit_rows(x, 1, acc)",
        "link": link_body(sigmoid, calibration),
        "batch_fn": f"credit_batch_{batch_path}",
        "threshold": c_double(float(threshold)),
        "manifest_sha256": manifest_sha256,
    }
    return _split(head, em.bitsets, trees.table_lines(bin_runs), trees.bodies, tail, parts)
