"""TreeSHAP from per-leaf tables: the C that app/model/codegen_shap.py appends to its main unit.

Path-dependent TreeSHAP (LightGBM's `pred_contrib`) splits, leaf by leaf, into a product game. Take a leaf
of value v whose path from the root splits on the distinct features F (d of them); z_k is the product of
the cover ratios count(child) / count(node) of the path's splits on feature k, and a row *follows* k when
it goes the path's way at every one of them. With O the features the row follows (m of them) and
w(s) = s! (d - s - 1)! / d!, the leaf adds to feature j

    j not in O:  -v * prod_{k not in O} z_k * P(O)                 (the same for every such j)
    j in O:      (1 - z_j) * v * prod_{k not in O} z_k * P(O - {j})
    where P(S) = sum over T subset of S of w(|T|) * prod_{k in S - T} z_k
               = sum_t w(|S| - t) e_t(z_S)    (e_t: elementary symmetric polynomials)

(LightGBM's recursion computes the same sums through its path weights; the dummy root element is a null
player.) With H(S) = v * prod_{k not in S} z_k * P(S), one number per subset S of F, both cases are
table look-ups: -H(O) for j not in O and (1 - z_j) / z_j * H(O - {j}) for j in O. This is FastTreeSHAP's
"v2" precomputation (Yang 2022), per leaf and indexed by the bit pattern of O; a row then costs one walk
of the tree (the pattern is built on the way down: a split the row does not follow clears its feature's
bit) and d additions per leaf, instead of the O(d^2) path arithmetic per leaf of the recursion.

The tables are built once per process, on the first SHAP call, from the model's own TreeSHAP tables
(node counts, leaf values): 2^d doubles per leaf, for the leaves with d <= a cap chosen so that all of
them fit SHAP_TABLE_BUDGET doubles; a deeper leaf is computed on the fly from the same formula
(O(d^2), no table). A tree with a zero count or more than 31 distinct features on a path keeps the
recursion (`tree_shap` of codegen_shap.py), as does every tree if the tables cannot be allocated. Every
entry point (one row, a batch, SQL `shap_values()` and the `explanations` table) goes through the same
code, so one client's contributions are the same bits whichever path asked. The order of the additions
differs from LightGBM's, so the result agrees with `pred_contrib` to rounding (the compile-time gate and
tests/test_shap_tables.py ask 1e-9), not bit for bit.
"""

from __future__ import annotations

EPILOGUE = r"""
#include <pthread.h>

#ifndef SHAP_TABLE_BUDGET
#define SHAP_TABLE_BUDGET (1 << 22) /* doubles of leaf tables at most (32 MiB) */
#endif
#define SHAP_TABLE_MAX_D 16          /* above: on the fly whatever the budget */
#define SHAP_MAX_D 31                /* distinct features on a path, as bits of a uint32_t */
#ifndef SHAP_BLOCK
#define SHAP_BLOCK 32 /* rows a block: every tree over the block, so its tables stay in cache */
#endif

typedef struct {
  double value;
  int64_t table;  /* offset of its 2^d doubles in sf_tab, or -1: on the fly */
  int32_t first;  /* its features, z and (1 - z) / z at sf_feat/sf_z/sf_r[first .. first + d) */
  int32_t d;
} sf_leaf;

typedef struct {
  int fast;             /* 0: the recursion (tree_shap) */
  unsigned char *slot;  /* per split: the bit of its feature among the path's distinct features */
  sf_leaf *leaf;        /* per leaf */
} sf_tree;

static pthread_once_t sf_once = PTHREAD_ONCE_INIT;
static int sf_ok;
static sf_tree *sf_trees;
static sf_leaf *sf_leaves;
static unsigned char *sf_slots;
static int32_t *sf_feat;
static double *sf_z, *sf_r, *sf_tab;
static double sf_w[SHAP_MAX_D + 1][SHAP_MAX_D]; /* sf_w[d][s] = s! (d - s - 1)! / d! */
static int64_t sf_n_leaf_entries;

#define SF_NTREES ((int)(sizeof SHAP_TREES / sizeof SHAP_TREES[0]))

/* One walk of tree t: per split its bit (slot); per leaf its distinct features and z. Counts the leaves'
   feature entries into *n_entries; returns 0 when the tree must keep the recursion. */
static int sf_walk(const shap_tree *t, int node, int nslots, int32_t *feat, double *z, unsigned char *slot,
                   sf_leaf *leaf, int32_t *leaf_feat, double *leaf_z, int64_t *n_entries) {
  if (node < 0) {
    sf_leaf *l = &leaf[~node];
    l->value = t->leaf_value[~node];
    l->d = nslots;
    l->first = (int32_t)*n_entries;
    if (leaf_feat)
      for (int j = 0; j < nslots; j++) {
        leaf_feat[*n_entries + j] = feat[j];
        leaf_z[*n_entries + j] = z[j];
      }
    *n_entries += nslots;
    return 1;
  }
  const shap_node *nd = &t->node[node];
  int s = 0;
  while (s < nslots && feat[s] != nd->feature) s++;
  if (s == nslots) {
    if (nslots == SHAP_MAX_D) return 0;
    feat[nslots] = nd->feature;
    z[nslots] = 1;
    nslots++;
  }
  slot[node] = (unsigned char)s;
  const double w = data_count(t, node), zl = data_count(t, nd->left), zr = data_count(t, nd->right);
  if (!(w > 0 && zl > 0 && zr > 0)) return 0;
  const double keep = z[s];
  z[s] = keep * (zl / w);
  if (!sf_walk(t, nd->left, nslots, feat, z, slot, leaf, leaf_feat, leaf_z, n_entries)) return 0;
  z[s] = keep * (zr / w);
  if (!sf_walk(t, nd->right, nslots, feat, z, slot, leaf, leaf_feat, leaf_z, n_entries)) return 0;
  z[s] = keep;
  return 1;
}

/* H(S) for every subset S of the leaf's d features (H of the full set is never read: 0). */
static void sf_fill(double *H, int d, const double *z, double v, double *poly, double *zprod) {
  const uint32_t full = d == 32 ? 0xffffffffu : (1u << d) - 1;
  const int stride = d + 1;
  zprod[0] = 1;
  poly[0] = 1;
  for (int t = 1; t <= d; t++) poly[t] = 0;
  for (uint32_t S = 1; S <= full; S++) {
    const int hb = 31 - __builtin_clz(S);
    const uint32_t P = S ^ (1u << hb);
    zprod[S] = zprod[P] * z[hb];
    const double *a = poly + (size_t)P * stride;
    double *b = poly + (size_t)S * stride;
    b[0] = a[0];
    for (int t = 1; t <= d; t++) b[t] = a[t] + z[hb] * a[t - 1];
  }
  for (uint32_t S = 0; S < full; S++) {
    const int m = __builtin_popcount(S);
    const double *e = poly + (size_t)S * stride;
    double sum = 0;
    for (int t = 0; t <= m; t++) sum += sf_w[d][m - t] * e[t];
    H[S] = v * zprod[full ^ S] * sum;
  }
  H[full] = 0;
}

static void sf_build(void) {
  for (int d = 1; d <= SHAP_MAX_D; d++) /* 1 / (d * C(d - 1, s)) */
    for (int s = 0; s < d; s++) {
      double c = 1;
      for (int i = 1; i <= s; i++) c = c * (d - s - 1 + i) / i;
      sf_w[d][s] = 1.0 / (d * c);
    }
  int64_t n_splits = 0, n_leaves = 0;
  for (int k = 0; k < SF_NTREES; k++) {
    if (SHAP_TREES[k].n_leaves > 1) {
      n_splits += SHAP_TREES[k].n_leaves - 1;
      n_leaves += SHAP_TREES[k].n_leaves;
    }
  }
  sf_trees = calloc((size_t)SF_NTREES + 1, sizeof *sf_trees);
  sf_leaves = calloc((size_t)n_leaves + 1, sizeof *sf_leaves);
  sf_slots = calloc((size_t)n_splits + 1, 1);
  if (!sf_trees || !sf_leaves || !sf_slots) return;
  int32_t feat[SHAP_MAX_D];
  double z[SHAP_MAX_D];
  int64_t entries = 0, split_at = 0, leaf_at = 0;
  int64_t by_d[SHAP_MAX_D + 1] = {0}; /* leaves by d, fast trees only */
  for (int k = 0; k < SF_NTREES; k++) { /* pass 1: slots, d, entry counts */
    const shap_tree *t = &SHAP_TREES[k];
    if (t->n_leaves <= 1) continue;
    sf_tree *ft = &sf_trees[k];
    ft->slot = sf_slots + split_at;
    ft->leaf = sf_leaves + leaf_at;
    split_at += t->n_leaves - 1;
    leaf_at += t->n_leaves;
    int64_t before = entries;
    ft->fast = sf_walk(t, 0, 0, feat, z, ft->slot, ft->leaf, 0, 0, &entries);
    if (!ft->fast) {
      entries = before;
      continue;
    }
    for (int i = 0; i < t->n_leaves; i++) by_d[ft->leaf[i].d]++;
  }
  int cap = 0;
  int64_t table = 0;
  for (int d = 1; d <= SHAP_TABLE_MAX_D; d++) {
    if (table + (by_d[d] << d) > SHAP_TABLE_BUDGET) break;
    table += by_d[d] << d;
    cap = d;
  }
  sf_n_leaf_entries = entries;
  sf_feat = malloc(sizeof(int32_t) * ((size_t)entries + 1));
  sf_z = malloc(sizeof(double) * ((size_t)entries + 1));
  sf_r = malloc(sizeof(double) * ((size_t)entries + 1));
  sf_tab = malloc(sizeof(double) * ((size_t)table + 1));
  double *poly = malloc(sizeof(double) * ((size_t)(SHAP_TABLE_MAX_D + 1) << (cap > 0 ? cap : 0)));
  double *zprod = malloc(sizeof(double) * ((size_t)1 << (cap > 0 ? cap : 0)));
  if (!sf_feat || !sf_z || !sf_r || !sf_tab || !poly || !zprod) {
    free(poly);
    free(zprod);
    return;
  }
  entries = 0;
  int64_t tab_at = 0;
  for (int k = 0; k < SF_NTREES; k++) { /* pass 2: features, z, tables */
    const shap_tree *t = &SHAP_TREES[k];
    sf_tree *ft = &sf_trees[k];
    if (t->n_leaves <= 1 || !ft->fast) continue;
    sf_walk(t, 0, 0, feat, z, ft->slot, ft->leaf, sf_feat, sf_z, &entries);
    for (int i = 0; i < t->n_leaves; i++) {
      sf_leaf *l = &ft->leaf[i];
      for (int j = 0; j < l->d; j++) sf_r[l->first + j] = (1 - sf_z[l->first + j]) / sf_z[l->first + j];
      l->table = -1;
      if (l->d <= cap) {
        l->table = tab_at;
        sf_fill(sf_tab + tab_at, l->d, sf_z + l->first, l->value, poly, zprod);
        tab_at += (int64_t)1 << l->d;
      }
    }
  }
  free(poly);
  free(zprod);
  sf_ok = 1;
}

__attribute__((destructor)) static void sf_free(void) {
  free(sf_trees);
  free(sf_leaves);
  free(sf_slots);
  free(sf_feat);
  free(sf_z);
  free(sf_r);
  free(sf_tab);
}

/* A leaf's contributions for the row whose followed features are the bits O. */
static inline void sf_leaf_add(const sf_leaf *l, uint32_t O, double *phi) {
  const int d = l->d;
  const int32_t *f = sf_feat + l->first;
  const double *r = sf_r + l->first;
  if (l->table >= 0) {
    const double *H = sf_tab + l->table;
    const double h = H[O];
    for (int j = 0; j < d; j++) {
      if (O >> j & 1)
        phi[f[j]] += r[j] * H[O ^ (1u << j)];
      else
        phi[f[j]] -= h;
    }
    return;
  }
  const double *z = sf_z + l->first;
  double e[SHAP_MAX_D + 1];
  double zu = 1;
  int m = 0;
  e[0] = 1;
  for (int j = 0; j < d; j++) {
    if (O >> j & 1) {
      e[m + 1] = 0;
      for (int t = m + 1; t >= 1; t--) e[t] += z[j] * e[t - 1];
      m++;
    } else {
      zu *= z[j];
    }
  }
  const double vz = l->value * zu;
  const double *w = sf_w[d];
  if (m < d) {
    double sum = 0;
    for (int t = 0; t <= m; t++) sum += w[m - t] * e[t];
    const double h = vz * sum;
    for (int j = 0; j < d; j++)
      if (!(O >> j & 1)) phi[f[j]] -= h;
  }
  for (int j = 0; j < d; j++) {
    if (!(O >> j & 1)) continue;
    double ep = 1, sum = w[m - 1];
    for (int t = 1; t < m; t++) {
      ep = e[t] - z[j] * ep;
      sum += w[m - 1 - t] * ep;
    }
    phi[f[j]] += (1 - z[j]) * vz * sum;
  }
}

/* One walk of a fast tree for one row: the followed-features pattern built on the way down. */
static void sf_tree_row(const shap_tree *t, const sf_tree *ft, const unsigned char *left, double *phi) {
  int stack_node[SHAP_MAX_SPLITS + 1];
  uint32_t stack_mask[SHAP_MAX_SPLITS + 1];
  int sp = 0, node = 0;
  uint32_t mask = 0xffffffffu;
  for (;;) {
    while (node >= 0) {
      const shap_node *nd = &t->node[node];
      const int go_left = left[node];
      stack_node[sp] = go_left ? nd->right : nd->left;
      stack_mask[sp++] = mask & ~(1u << ft->slot[node]);
      node = go_left ? nd->left : nd->right;
    }
    const sf_leaf *l = &ft->leaf[~node];
    sf_leaf_add(l, mask & (0xffffffffu >> (32 - l->d)), phi);
    if (!sp) break;
    node = stack_node[--sp];
    mask = stack_mask[sp];
  }
}

/* the recursion of codegen_shap.py, row by row (also the fallback when the tables could not be built) */
static void shap_row(const float *x, double *out, shap_path *path) {
  unsigned char left[SHAP_MAX_SPLITS];
  memset(out, 0, (SHAP_NF + 1) * sizeof(double));
  for (int k = 0; k < SF_NTREES; k++) {
    const shap_tree *t = &SHAP_TREES[k];
    out[SHAP_NF] += t->expected;
    if (t->n_leaves > 1) {
      t->decide(x, left);
      tree_shap(t, left, out, 0, 0, path, 1, 1, -1);
    }
  }
}

static void sf_block(const float *x, int n, double *out, shap_path *path) {
  unsigned char left[SHAP_MAX_SPLITS];
  memset(out, 0, (size_t)n * (SHAP_NF + 1) * sizeof(double));
  for (int k = 0; k < SF_NTREES; k++) {
    const shap_tree *t = &SHAP_TREES[k];
    const sf_tree *ft = &sf_trees[k];
    for (int r = 0; r < n; r++) {
      double *phi = out + (size_t)r * (SHAP_NF + 1);
      phi[SHAP_NF] += t->expected;
      if (t->n_leaves <= 1) continue;
      t->decide(x + (size_t)r * SHAP_NF, left);
      if (ft->fast)
        sf_tree_row(t, ft, left, phi);
      else
        tree_shap(t, left, phi, 0, 0, path, 1, 1, -1);
    }
  }
}

#define SHAP_STACK_PATH 2048 /* up to 64 KiB of path on the stack, the heap beyond (deep trees) */

static void shap_rows(const float *x, int64_t n, double *out, int tables) {
  shap_path local[SHAP_PATH_LEN <= SHAP_STACK_PATH ? SHAP_PATH_LEN : 1];
  shap_path *path = SHAP_PATH_LEN <= SHAP_STACK_PATH ? local : malloc(sizeof(shap_path) * SHAP_PATH_LEN);
  if (!path) { /* out of memory: NaN, never a wrong number */
    for (int64_t i = 0; i < n * (SHAP_NF + 1); ++i) out[i] = NAN;
    return;
  }
  if (tables) pthread_once(&sf_once, sf_build);
  if (tables && sf_ok) {
    for (int64_t r = 0; r < n; r += SHAP_BLOCK) {
      const int m = n - r < SHAP_BLOCK ? (int)(n - r) : SHAP_BLOCK;
      sf_block(x + r * SHAP_NF, m, out + r * (SHAP_NF + 1), path);
    }
  } else {
    for (int64_t r = 0; r < n; ++r) shap_row(x + r * SHAP_NF, out + r * (SHAP_NF + 1), path);
  }
  if (path != local) free(path);
}

CREDIT_EXPORT void credit_shap_batch(const float *x, int64_t n, double *out) { shap_rows(x, n, out, 1); }

CREDIT_EXPORT void credit_shap_row(const float *x, double *out) { shap_rows(x, 1, out, 1); }

/* LightGBM's recursion alone, for the benchmark and the tests (the same numbers to rounding) */
CREDIT_EXPORT void credit_shap_batch_recursive(const float *x, int64_t n, double *out) { shap_rows(x, n, out, 0); }

/* What the tables hold: [leaves on tables, leaves on the fly, doubles of tables, largest d on a table,
   trees on the recursion]; all 0 before the first SHAP call or when the tables could not be built. */
CREDIT_EXPORT void credit_shap_table_stats(int64_t *out) {
  for (int i = 0; i < 5; i++) out[i] = 0;
  if (!sf_ok) return;
  for (int k = 0; k < SF_NTREES; k++) {
    const sf_tree *ft = &sf_trees[k];
    if (SHAP_TREES[k].n_leaves <= 1) continue;
    if (!ft->fast) {
      out[4]++;
      continue;
    }
    for (int i = 0; i < SHAP_TREES[k].n_leaves; i++) {
      const sf_leaf *l = &ft->leaf[i];
      if (l->table >= 0) {
        out[0]++;
        out[2] += (int64_t)1 << l->d;
        if (l->d > out[3]) out[3] = l->d;
      } else {
        out[1]++;
      }
    }
  }
}

/* for app/scoring/native/score_ext.c (weak references: libraries without TreeSHAP have no shap_values()) */
__attribute__((visibility("hidden"))) void credit_shap_impl(const float *x, double *out) {
  credit_shap_batch(x, 1, out);
}
__attribute__((visibility("hidden"))) void credit_shap_rows_impl(const float *x, int64_t n, double *out) {
  credit_shap_batch(x, n, out);
}
"""
