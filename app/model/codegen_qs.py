"""QuickScorer batch path (Lucchese et al., SIGIR 2015; vectorised as in vQS): AVX2, blocks of 16 rows.

Each tree's leaves are numbered left to right and a row keeps one bitvector per tree (32-bit when every
tree has <= 32 leaves, else 64-bit), all ones at the start. A node that sends the row right clears
the bits of its left subtree's leaves; the exit leaf is then the lowest set bit, whatever order the
nodes were applied in. So nodes are grouped by feature and sorted by threshold:

- numerical nodes, per feature, two lists sorted by the (float-rounded, see codegen.py) threshold t:
  nodes whose NaN goes left (the row goes right when `x > t`, false for NaN) and nodes whose NaN goes
  right (the row goes right when `!(x <= t)`, true for NaN). Both tests are monotone in t, so each
  list is scanned from its smallest threshold until no row of the block goes right.
- categorical nodes: per categorical feature and category index (the category, or one index for
  NaN, negative, out-of-int-range and beyond every bitset: all of them go right), the AND over the
  feature's nodes of each tree, precomputed: one row of per-tree masks, ANDed in per data row.
- Zero-missing splits whose default side does not hold 0 (two-sided in codegen.py): two more lists
  per feature, scanned with x' = NaN where |x| <= 1e-35 (NaN and zero then follow the default side).
- trees with > 64 leaves keep their if/else code (codegen.py), called in tree order, so scores add
  up in LightGBM's order and stay bit-exact.

The kernel is compiled for AVX2 (`target("avx2")`) and chosen at run time with
`__builtin_cpu_supports`; without AVX2 (or off x86, or built with -DCREDIT_NO_AVX2) the batch falls
back to the node tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.model.c_emit import Emitter, c_double, c_float

QS_ROWS = 16  # rows a block: 16 measured faster than 8 (500x31: 1.88 vs 2.70 µs/row; 1000x63: 10.9 vs 11.3)
MAX_LEAVES = 64


@dataclass
class QSTree:
    leaves: list[str] = field(default_factory=list)  # leaf values (C literals), left to right
    nodes: list[tuple[int, np.float32, int, int]] = field(default_factory=list)  # (f, t, list kind, clear)
    cats: list[tuple[int, list[int], int]] = field(default_factory=list)  # (f, bitset words, clear)


def collect(em: Emitter, root: dict[str, Any]) -> QSTree | None:
    """The tree's nodes for QuickScorer, or None when it needs the general code."""
    tree = QSTree()
    ok = True

    def visit(node: dict[str, Any]) -> tuple[int, int]:
        """(first leaf, number of leaves) of the subtree."""
        nonlocal ok
        if "leaf_value" in node:
            tree.leaves.append(c_double(float(node["leaf_value"])))
            return len(tree.leaves) - 1, 1
        em.condition(node)
        simple, cat, zero = em.last_simple, em.last_cat, em.last_zero
        if simple is None and cat is None and zero is None:
            ok = False
        first, n_left = visit(node["left_child"])
        _, n_right = visit(node["right_child"])
        clear = ((1 << n_left) - 1) << first if first + n_left <= MAX_LEAVES else 0
        if simple is not None:  # kind 0: right when x > t (NaN left); 1: right when !(x <= t) (NaN right)
            tree.nodes.append((simple[0], simple[1], 0 if simple[2] else 1, clear))
        elif zero is not None:  # kinds 2 and 3: the same on x' (NaN where |x| <= 1e-35)
            tree.nodes.append((zero[0], zero[1], 2 if zero[2] else 3, clear))
        elif cat is not None:
            tree.cats.append((cat[0], list(cat[1]), clear))
        return first, n_left + n_right

    visit(root)
    if not ok or len(tree.leaves) > MAX_LEAVES:
        return None
    return tree


def _hex(v: int, width: int) -> str:
    return f"0x{v:x}u" if width == 32 else f"0x{v:x}ull"


def emit(trees: list[QSTree | None], n_features: int, rows: int | None = None) -> tuple[str, str]:
    """(C definitions, body of `credit_batch_qs(x, n, out)`) for the model's trees in order
    (None: a tree that keeps its if/else function tree<i>)."""
    rows = rows or QS_ROWS
    if rows not in (8, 16):
        raise ValueError(f"QuickScorer blocks of 8 or 16 rows, not {rows}")
    qs = [t for t in trees if t is not None]
    if not qs:
        return "", "  credit_batch_tables(x, n, out);"
    width = 32 if max(len(t.leaves) for t in qs) <= 32 else 64
    full = (1 << width) - 1
    nq = len(qs)
    lists: list[list[list[tuple[np.float32, int, int]]]] = [[[], [], [], []] for _ in range(n_features)]
    cat_nodes: dict[int, list[tuple[int, list[int], int]]] = {}
    leaf_vals: list[str] = []
    leaf_off: list[int] = []
    for q, t in enumerate(qs):
        leaf_off.append(len(leaf_vals))
        leaf_vals.extend(t.leaves)
        for f, tf, kind, clear in t.nodes:
            lists[f][kind].append((tf, q, clear))
        for f, words, clear in t.cats:
            cat_nodes.setdefault(f, []).append((q, words, clear))
    nodes, feat = _node_rows(lists, width)
    cat_f, cat_max, cat_off, cat_rows = _category_tables(cat_nodes, nq, full)
    suffix = "u" if width == 32 else "ull"
    defs = [
        f"#define QS_NQ {nq}",
        f"#define QS_W {width}",
        f"#define QS_R {rows}",
        f"#define QS_NCF {len(cat_f)}",
        f"typedef uint{width}_t qs_bits;",
        "typedef struct { float t; uint32_t q; qs_bits clear; } qs_node;",
        f"static const qs_node QS_NODES[{max(len(nodes), 1)}] = {{{', '.join(nodes) or '{0}'}}};",
        f"static const int32_t QS_FEAT[{len(feat)}] = {{{', '.join(map(str, feat))}}};",
        f"static const double QS_LEAF[{len(leaf_vals)}] = {{{', '.join(leaf_vals)}}};",
        f"static const int32_t QS_LOFF[{nq}] = {{{', '.join(map(str, leaf_off))}}};",
    ]
    if cat_f:
        flat = ",".join(f"0x{int(v):x}{suffix}" for row in cat_rows for v in row)
        defs += [
            f"static const int32_t QS_CF[{len(cat_f)}] = {{{', '.join(map(str, cat_f))}}};",
            f"static const int32_t QS_CMAX[{len(cat_f)}] = {{{', '.join(map(str, cat_max))}}};",
            f"static const int32_t QS_COFF[{len(cat_f)}] = {{{', '.join(map(str, cat_off))}}};",
            f"static const qs_bits QS_CT[{len(cat_rows) * nq}] __attribute__((aligned(32))) = {{{flat}}};",
        ]
    defs.append(_KERNEL)
    defs.append(
        "static void qs_sum(const qs_bits *bv, const qs_bits *cm, const float *x, int m, double *acc) {\n"
        + "\n".join(_sum_calls(trees))
        + "\n}\n"
        + _DRIVER
    )
    return "\n".join(defs), "  qs_batch(x, n, out);"


def _node_rows(lists: list[list[list[tuple[np.float32, int, int]]]], width: int) -> tuple[list[str], list[int]]:
    """The nodes as C initialisers, per feature and kind sorted by threshold, and each run's start (QS_FEAT)."""
    nodes: list[str] = []
    feat = [0]
    for per_feature in lists:
        for entries in per_feature:
            for tf, q, clear in sorted(entries, key=lambda e: float(e[0])):
                nodes.append(f"{{{c_float(tf)}, {q}, {_hex(clear, width)}}}")
            feat.append(len(nodes))
    return nodes, feat


def _category_tables(
    cat_nodes: dict[int, list[tuple[int, list[int], int]]], nq: int, full: int
) -> tuple[list[int], list[int], list[int], list[np.ndarray]]:
    """Categorical: per feature, rows of per-tree masks indexed by category (last row: all go right)."""
    cat_f, cat_max, cat_off, cat_rows = [], [], [], []
    for f in sorted(cat_nodes):
        cmax = max(32 * len(w) for _, w, _ in cat_nodes[f])
        table = np.full((cmax + 1, nq), full, dtype=np.uint64)
        cats = np.arange(cmax + 1)
        for q, words, clear in cat_nodes[f]:
            member = np.zeros(cmax + 1, dtype=bool)
            for c in range(32 * len(words)):
                member[c] = (words[c // 32] >> (c % 32)) & 1
            right = ~member | (cats == cmax)
            table[right, q] &= np.uint64(full & ~clear)
        cat_f.append(f)
        cat_max.append(cmax)
        cat_off.append(len(cat_rows))
        cat_rows.extend(table)
    return cat_f, cat_max, cat_off, cat_rows


def _sum_calls(trees: list[QSTree | None]) -> list[str]:
    """The sum in tree order: runs of QuickScorer trees, if/else calls between them."""
    calls, q, start = [], 0, 0
    for i, t in enumerate(trees):
        if t is None:
            if q > start:
                calls.append(f"  qs_add(bv, cm, {start}, {q}, m, acc);")
            calls.append(f"  tree{i}(x, m, acc);")
            start = q
        else:
            q += 1
    if q > start:
        calls.append(f"  qs_add(bv, cm, {start}, {q}, m, acc);")
    return calls


_KERNEL = r"""
#if (defined(__x86_64__) || defined(__i386__)) && !defined(CREDIT_NO_AVX2) /* -DCREDIT_NO_AVX2: the fallback */
#include <immintrin.h>
#define QS_HAVE_X86 1
#else
#define QS_HAVE_X86 0
#endif
#include <stdlib.h>

static void qs_sum(const qs_bits *bv, const qs_bits *cm, const float *x, int m, double *acc);

#if QS_W == 32
#define QS_CTZ(b) __builtin_ctz(b)
#else
#define QS_CTZ(b) __builtin_ctzll(b)
#endif

/* exit leaves of QuickScorer trees [a, b) added to the m rows' scores, tree by tree */
static void qs_add(const qs_bits *bv, const qs_bits *cm, int a, int b, int m, double *acc) {
  for (int q = a; q < b; ++q) {
    const double *L = QS_LEAF + QS_LOFF[q];
    for (int r = 0; r < m; ++r) {
      qs_bits bits = bv[QS_R * q + r];
#if QS_NCF
      bits &= cm[r * QS_NQ + q];
#else
      (void)cm;
#endif
      acc[r] += L[QS_CTZ(bits)];
    }
  }
}

#if QS_HAVE_X86
/* one block of QS_R rows (xt feature-major: xt[QS_R f + r]); bv[QS_R q + r] = tree q's leaf bits of row r.
   QS_V float vectors (8 rows each) per feature; a node's compare is done for all of them, the scan
   stops when no row of the block goes right. */
#define QS_V (QS_R / 8)
__attribute__((target("avx2"))) static void qs_scan(const float *xt, qs_bits *bv) {
  const __m256i ones = _mm256_set1_epi32(-1);
  for (int q = 0; q < QS_NQ * QS_R * QS_W / 256; ++q) _mm256_store_si256((__m256i *)bv + q, ones);
#if QS_W == 32
#define QS_APPLY1(c, b_, cl)                                                                          \
  _mm256_store_si256((b_), _mm256_andnot_si256(_mm256_and_si256(_mm256_castps_si256(c), (cl)), _mm256_load_si256(b_)))
#define QS_CLEAR(nd) _mm256_set1_epi32((int)(nd)->clear)
#else
#define QS_APPLY1(c, b_, cl)                                                                           \
  do {                                                                                                 \
    const __m256i ci_ = _mm256_castps_si256(c);                                                        \
    const __m256i lo_ = _mm256_and_si256(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(ci_)), (cl));   \
    const __m256i hi_ = _mm256_and_si256(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(ci_, 1)), (cl)); \
    _mm256_store_si256((b_), _mm256_andnot_si256(lo_, _mm256_load_si256(b_)));                         \
    _mm256_store_si256((b_) + 1, _mm256_andnot_si256(hi_, _mm256_load_si256((b_) + 1)));               \
  } while (0)
#define QS_CLEAR(nd) _mm256_set1_epi64x((long long)(nd)->clear)
#endif
#define QS_LIST(v, from, to, pred)                                                 \
  for (int32_t i = (from); i < (to); ++i) {                                        \
    const qs_node *nd = QS_NODES + i;                                              \
    const __m256 t_ = _mm256_set1_ps(nd->t);                                       \
    __m256 c[QS_V], any = _mm256_setzero_ps();                                     \
    for (int j = 0; j < QS_V; ++j) {                                               \
      c[j] = _mm256_cmp_ps((v)[j], t_, (pred));                                    \
      any = _mm256_or_ps(any, c[j]);                                               \
    }                                                                              \
    if (_mm256_testz_ps(any, any)) break; /* thresholds ascend: no row further */  \
    const __m256i cl_ = QS_CLEAR(nd);                                              \
    for (int j = 0; j < QS_V; ++j)                                                 \
      QS_APPLY1(c[j], (__m256i *)(bv + QS_R * nd->q + 8 * j), cl_);                \
  }
  for (int f = 0; f < CREDIT_NF; ++f) {
    const int32_t *o = QS_FEAT + 4 * f; /* lists of kinds 0..3: [o[k], o[k + 1]) */
    if (o[0] == o[4]) continue;
    __m256 v[QS_V];
    for (int j = 0; j < QS_V; ++j) v[j] = _mm256_load_ps(xt + QS_R * f + 8 * j);
    QS_LIST(v, o[0], o[1], _CMP_GT_OQ);  /* NaN goes left: right when x > t */
    QS_LIST(v, o[1], o[2], _CMP_NLE_UQ); /* NaN goes right: right when !(x <= t) */
    if (o[2] != o[4]) {                  /* Zero missing type: |x| <= 1e-35 reads as NaN */
      for (int j = 0; j < QS_V; ++j) {
        const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v[j]);
        v[j] = _mm256_blendv_ps(v[j], _mm256_set1_ps(NAN), _mm256_cmp_ps(a, _mm256_set1_ps(1e-35f), _CMP_LE_OQ));
      }
      QS_LIST(v, o[2], o[3], _CMP_GT_OQ);
      QS_LIST(v, o[3], o[4], _CMP_NLE_UQ);
    }
  }
#undef QS_LIST
#undef QS_APPLY1
#undef QS_CLEAR
}

#if QS_NCF
/* categorical masks of one row: cm[q] = AND over categorical features of the precomputed row */
__attribute__((target("avx2"))) static void qs_cats(const float *xt, int r, qs_bits *cm) {
  for (int j = 0; j < QS_NCF; ++j) {
    const float v = xt[QS_R * QS_CF[j] + r];
    int idx = QS_CMAX[j];
    if (v > -1.0f && v < 2147483648.0f) { /* NaN, negative, beyond int: all right (last row) */
      const int c = (int)v;
      if (c < idx) idx = c;
    }
    const qs_bits *row = QS_CT + (size_t)(QS_COFF[j] + idx) * QS_NQ;
    if (j == 0)
      for (int q = 0; q < QS_NQ; ++q) cm[q] = row[q];
    else
      for (int q = 0; q < QS_NQ; ++q) cm[q] &= row[q];
  }
}
#endif

__attribute__((target("avx2"))) static void qs_run(const float *x, int64_t n, double *out, float *xt, qs_bits *bv,
                                                  qs_bits *cm) {
  for (int64_t i = 0; i < n; i += QS_R) {
    const int m = n - i < QS_R ? (int)(n - i) : QS_R;
    const float *xb = x + i * CREDIT_NF;
    for (int r = 0; r < QS_R; ++r) {
      const float *row = xb + (r < m ? r : 0) * CREDIT_NF;
      for (int f = 0; f < CREDIT_NF; ++f) xt[QS_R * f + r] = row[f];
    }
    qs_scan(xt, bv);
#if QS_NCF
    for (int r = 0; r < m; ++r) qs_cats(xt, r, cm + r * QS_NQ);
#endif
    double acc[QS_R] = {0.0};
    qs_sum(bv, cm, xb, m, acc);
    for (int r = 0; r < m; ++r) out[i + r] = credit_link(acc[r]);
  }
}
#endif
"""

_DRIVER = r"""
static void credit_batch_tables(const float *x, int64_t n, double *out);

/* QuickScorer over blocks of 8 rows when the CPU has AVX2; the node tables otherwise */
static void qs_batch(const float *x, int64_t n, double *out) {
#if QS_HAVE_X86
  if (n > 0 && __builtin_cpu_supports("avx2")) {
    float *xt = aligned_alloc(32, sizeof(float) * QS_R * CREDIT_NF + 32);
    qs_bits *bv = aligned_alloc(32, sizeof(qs_bits) * QS_R * QS_NQ + 32);
    qs_bits *cm = aligned_alloc(32, sizeof(qs_bits) * QS_R * QS_NQ + 32);
    if (xt && bv && cm) {
      qs_run(x, n, out, xt, bv, cm);
      free(xt);
      free(bv);
      free(cm);
      return;
    }
    free(xt);
    free(bv);
    free(cm);
  }
#endif
  credit_batch_tables(x, n, out);
}
"""
