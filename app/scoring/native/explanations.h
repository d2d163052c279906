/*
** explanations.h -- the `explanations` eponymous virtual table, included by score_ext.c after the
** `scores` table (so it is compiled twice, like everything there: `explanations` and
** `challenger_explanations`).  Not a separate translation unit: it uses score_ext.c's ScoreCtx,
** ScoresVtab, scores_sql() and scores_best_index().
**
**   SELECT client_id, feature, value, shap, base_value FROM explanations [WHERE client_id ...]
**
** One row per (client, feature with a non-zero contribution), in client_id then feature order:
**   client_id   INTEGER  the client (main.features.client_id)
**   feature     INTEGER  the feature's index in the manifest's order (0-based; main.feature_names.idx)
**   value       REAL     the client's value of that feature as the model reads it (float32); NULL if missing
**   shap        REAL     its TreeSHAP contribution, raw margin (log-odds): shap_values(client_id)[feature]
**   base_value  REAL     the model's expected value (the same on every row): shap_values(client_id)[n_features]
** so base_value + sum(shap) over a client's rows is the model's raw margin.  A feature whose contribution is
** exactly 0 (one the model never splits on, say) has no row.
**
** The scan reads main.features in client_id order (the constraints on client_id of `scores` are pushed down
** the same way), EXPL_BLOCK clients at a time, and explains each block with the library's batch TreeSHAP
** (credit_shap_rows_impl: the per-leaf tables of codegen_shap_tables.py, the same numbers as
** shap_values(client_id)).  A features.x that is not a BLOB of 4 * n_features bytes, or a non-finite
** contribution, fails the query with score()'s message for that client.
*/

#ifndef EXPL_BLOCK
#define EXPL_BLOCK 32
#endif

extern void credit_shap_rows_impl(const float *x, int64_t n, double *out) __attribute__((weak, visibility("hidden")));

typedef struct ExplCursor {
  sqlite3_vtab_cursor base;
  sqlite3_stmt *scan;
  int kind;
  int n, i, j;   /* clients in the block, current client, current feature */
  int done;
  sqlite3_int64 *ids;
  float *x;      /* EXPL_BLOCK * n_features, 64-byte aligned */
  double *phi;   /* EXPL_BLOCK * (n_features + 1) */
} ExplCursor;

static int expl_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out, char **err) {
  (void)argc; (void)argv; (void)err;
  int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(client_id INTEGER, feature INTEGER, value REAL, shap REAL, "
                                    "base_value REAL)");
  if (rc != SQLITE_OK) return rc;
  sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  ScoresVtab *v = sqlite3_malloc(sizeof(*v));
  if (!v) return SQLITE_NOMEM;
  memset(v, 0, sizeof(*v));
  v->ctx = (ScoreCtx *)aux;
  v->ctx->refs++;
  *out = &v->base;
  return SQLITE_OK;
}

static int expl_best_index(sqlite3_vtab *vt, sqlite3_index_info *info) {
  int rc = scores_best_index(vt, info);
  info->idxNum &= SCORES_KINDS - 1; /* every column needs the contributions: rows are the non-zero ones */
  if (!(info->idxNum & SCORES_EQ)) info->estimatedCost *= 50; /* a client is many rows and costs a TreeSHAP */
  if (info->nOrderBy == 2 && info->aOrderBy[0].iColumn <= 0 && !info->aOrderBy[0].desc &&
      info->aOrderBy[1].iColumn == 1 && !info->aOrderBy[1].desc)
    info->orderByConsumed = 1;
  return rc;
}

static int expl_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out) {
  int nf = ((ScoresVtab *)vt)->ctx->n_features;
  ExplCursor *cur = sqlite3_malloc(sizeof(*cur));
  if (!cur) return SQLITE_NOMEM;
  memset(cur, 0, sizeof(*cur));
  size_t xbytes = ((size_t)EXPL_BLOCK * (size_t)nf * sizeof(float) + 63) & ~(size_t)63;
  cur->x = aligned_alloc(64, xbytes);
  cur->ids = sqlite3_malloc64(sizeof(sqlite3_int64) * EXPL_BLOCK);
  cur->phi = sqlite3_malloc64(sizeof(double) * EXPL_BLOCK * ((sqlite3_uint64)nf + 1));
  if (!cur->x || !cur->ids || !cur->phi) {
    free(cur->x);
    sqlite3_free(cur->ids);
    sqlite3_free(cur->phi);
    sqlite3_free(cur);
    return SQLITE_NOMEM;
  }
  *out = &cur->base;
  return SQLITE_OK;
}

static void expl_release_scan(ExplCursor *cur) {
  if (!cur->scan) return;
  ScoresVtab *v = (ScoresVtab *)cur->base.pVtab;
  sqlite3_reset(cur->scan);
  sqlite3_clear_bindings(cur->scan);
  if (!v->cached[cur->kind])
    v->cached[cur->kind] = cur->scan;
  else
    sqlite3_finalize(cur->scan);
  cur->scan = 0;
}

static int expl_close(sqlite3_vtab_cursor *vc) {
  ExplCursor *cur = (ExplCursor *)vc;
  expl_release_scan(cur);
  free(cur->x);
  sqlite3_free(cur->ids);
  sqlite3_free(cur->phi);
  sqlite3_free(cur);
  return SQLITE_OK;
}

static int expl_error(ExplCursor *cur, char *msg, int rc) {
  sqlite3_vtab *vt = cur->base.pVtab;
  sqlite3_free(vt->zErrMsg);
  vt->zErrMsg = msg;
  return msg ? rc : SQLITE_NOMEM;
}

/* Skip to the next (client, feature) with a non-zero contribution, reading and explaining blocks as needed. */
static int expl_fill(ExplCursor *cur);

static int expl_advance(ExplCursor *cur) {
  int nf = ((ScoresVtab *)cur->base.pVtab)->ctx->n_features;
  for (;;) {
    while (cur->i < cur->n) {
      const double *phi = cur->phi + (size_t)cur->i * (nf + 1);
      while (++cur->j < nf)
        if (phi[cur->j] != 0) return SQLITE_OK;
      cur->i++;
      cur->j = -1;
    }
    if (cur->done) return SQLITE_OK;
    int rc = expl_fill(cur);
    if (rc != SQLITE_OK) return rc;
  }
}

static int expl_fill(ExplCursor *cur) {
  ScoreCtx *c = ((ScoresVtab *)cur->base.pVtab)->ctx;
  const char *fname = SCORE_EXT_PREFIX "explanations";
  int nf = c->n_features, n = 0, rc;
  cur->i = 0;
  cur->j = -1;
  cur->n = 0;
  while (n < EXPL_BLOCK && !cur->done) {
    rc = sqlite3_step(cur->scan);
    if (rc == SQLITE_DONE) {
      cur->done = 1;
      break;
    }
    if (rc != SQLITE_ROW)
      return expl_error(cur, sqlite3_mprintf("%s: reading features failed: %s", fname, sqlite3_errmsg(c->db)), rc);
    sqlite3_int64 id = sqlite3_column_int64(cur->scan, 0);
    int t = sqlite3_column_type(cur->scan, 1);
    int bytes = sqlite3_column_bytes(cur->scan, 1);
    if (t != SQLITE_BLOB)
      return expl_error(cur, sqlite3_mprintf("%s: features.x of client_id %lld is %s, not a BLOB", fname, id,
                                             type_name(t)), SQLITE_ERROR);
    if (bytes != 4 * nf)
      return expl_error(cur, sqlite3_mprintf("%s: features.x of client_id %lld: feature BLOB must be %d bytes "
                                             "(%d float32 features), got %d bytes", fname, id, 4 * nf, nf, bytes),
                        SQLITE_ERROR);
    cur->ids[n] = id;
    memcpy(cur->x + (size_t)n * nf, sqlite3_column_blob(cur->scan, 1), (size_t)bytes);
    n++;
  }
  if (n) credit_shap_rows_impl(cur->x, n, cur->phi);
  for (int r = 0; r < n; r++)
    for (int k = 0; k <= nf; k++)
      if (!isfinite(cur->phi[(size_t)r * (nf + 1) + k]))
        return expl_error(cur, sqlite3_mprintf("%s: the model returned a non-finite contribution for client_id %lld",
                                               fname, cur->ids[r]), SQLITE_ERROR);
  cur->n = n;
  return SQLITE_OK;
}

static int expl_filter(sqlite3_vtab_cursor *vc, int idx, const char *idxStr, int argc, sqlite3_value **argv) {
  (void)idxStr;
  ExplCursor *cur = (ExplCursor *)vc;
  ScoresVtab *v = (ScoresVtab *)vc->pVtab;
  expl_release_scan(cur);
  cur->kind = idx & (SCORES_KINDS - 1);
  cur->done = 0;
  cur->n = cur->i = 0;
  cur->j = -1;
  if (v->cached[cur->kind]) {
    cur->scan = v->cached[cur->kind];
    v->cached[cur->kind] = 0;
  } else {
    char *sql = scores_sql(cur->kind);
    if (!sql) return SQLITE_NOMEM;
    int rc = sqlite3_prepare_v3(v->ctx->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &cur->scan, 0);
    sqlite3_free(sql);
    if (rc != SQLITE_OK) {
      char *msg = sqlite3_mprintf(SCORE_EXT_PREFIX "explanations: cannot read main.features: %s",
                                  sqlite3_errmsg(v->ctx->db));
      sqlite3_finalize(cur->scan);
      cur->scan = 0;
      return expl_error(cur, msg, rc);
    }
  }
  int a = 0;
  for (int bit = 0; bit < 3; bit++)
    if (cur->kind & (1 << bit)) {
      if (a >= argc) return expl_error(cur, sqlite3_mprintf("explanations: missing constraint"), SQLITE_INTERNAL);
      sqlite3_bind_value(cur->scan, bit + 1, argv[a++]);
    }
  return expl_advance(cur);
}

static int expl_next(sqlite3_vtab_cursor *vc) { return expl_advance((ExplCursor *)vc); }

static int expl_eof(sqlite3_vtab_cursor *vc) {
  ExplCursor *cur = (ExplCursor *)vc;
  return cur->i >= cur->n;
}

static int expl_column(sqlite3_vtab_cursor *vc, sqlite3_context *ctx, int col) {
  ExplCursor *cur = (ExplCursor *)vc;
  int nf = ((ScoresVtab *)vc->pVtab)->ctx->n_features;
  const double *phi = cur->phi + (size_t)cur->i * (nf + 1);
  switch (col) {
    case 0: sqlite3_result_int64(ctx, cur->ids[cur->i]); break;
    case 1: sqlite3_result_int(ctx, cur->j); break;
    case 2: {
      float x = cur->x[(size_t)cur->i * nf + cur->j];
      if (isnan(x))
        sqlite3_result_null(ctx);
      else
        sqlite3_result_double(ctx, (double)x);
      break;
    }
    case 3: sqlite3_result_double(ctx, phi[cur->j]); break;
    default: sqlite3_result_double(ctx, phi[nf]);
  }
  return SQLITE_OK;
}

static int expl_rowid(sqlite3_vtab_cursor *vc, sqlite3_int64 *rowid) {
  ExplCursor *cur = (ExplCursor *)vc;
  int nf = ((ScoresVtab *)vc->pVtab)->ctx->n_features;
  *rowid = cur->ids[cur->i] * (sqlite3_int64)(nf + 1) + cur->j;
  return SQLITE_OK;
}

static const sqlite3_module explanations_module = {
    .iVersion = 0,
    .xCreate = 0, /* eponymous-only */
    .xConnect = expl_connect,
    .xBestIndex = expl_best_index,
    .xDisconnect = scores_disconnect,
    .xOpen = expl_open,
    .xClose = expl_close,
    .xFilter = expl_filter,
    .xNext = expl_next,
    .xEof = expl_eof,
    .xColumn = expl_column,
    .xRowid = expl_rowid,
};
