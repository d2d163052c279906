/*
** score_ext.c -- SQLite loadable extension: credit scoring inside SQL.
**
** Compiled by `credit compile` TOGETHER WITH the generated model C into one
** shared library model-<id12>.so (symlink score.so).  The model side exports
** the C ABI of docs/contracts.md; this file adds the SQLite entry point
** sqlite3_score_init, which registers on the connection:
**
**   score(client_id)    REAL probability for features.x of that client;
**                       NULL for an unknown client or a NULL argument;
**                       error for a TEXT / REAL / BLOB argument.
**   decision(client_id) 'accept' | 'refuse' (credit_refuses: refuse when p >= threshold).
**   score_features(x)   probability for a float32 feature BLOB.
**   model_id()          credit_model_id() of the library this connection loaded.
**   model_threshold()   credit_threshold().
**   shap_values(client_id)  TreeSHAP of that client as JSON text: an array of
**                       n_features + 1 numbers (%!.17g, exact doubles), feature
**                       contributions in manifest order then the expected value,
**                       in raw margin (log-odds) space; NULL for an unknown client.
**                       Registered only when the library has TreeSHAP (a weak
**                       hidden reference to credit_shap_impl, codegen_shap.py).
**   score_model_info    eponymous virtual table: one row (model_id,
**                       n_features, threshold); see "close hook" below.
**   scores              eponymous virtual table (client_id, probability, decision):
**                       the whole portfolio scored in blocks by the batch engine,
**                       equal to score(client_id) row for row; see "portfolio" below.
**   explanations        eponymous virtual table (client_id, feature, value, shap, base_value):
**                       TreeSHAP of the whole portfolio in blocks (explanations.h); registered
**                       only when the library has TreeSHAP.
**
** Lookup: one prepared statement per connection, `SELECT x FROM main.features
** WHERE client_id=?1` (client_id is the rowid), prepared lazily with
** SQLITE_PREPARE_PERSISTENT and reset after every call so it never holds a
** read transaction between calls.  Build with -DSCORE_EXT_BLOB_LOOKUP to use a
** cached sqlite3_blob + sqlite3_blob_reopen() instead (kept for the benchmark
** only: a live blob handle keeps a read transaction open between statements,
** which blocks WAL checkpoints and writers of the features table).
**
** Close hook: SQLite refuses to close a connection that still owns prepared
** statements (sqlite3_close -> SQLITE_BUSY; sqlite3_close_v2 -> a zombie that
** is never freed), and function destructors only run after that check.  Before
** the check, though, sqlite3_close() disconnects every virtual table,
** including eponymous ones.  So the lookup statement is owned by the eponymous
** table score_model_info, connected whenever the statement is prepared; its
** xDisconnect finalizes the statement.  Closing from apsw, Python or the
** sqlite3 shell then frees everything.
**
** Challenger names: score_ext_challenger.c compiles this file a second time
** into the same library with SCORE_EXT_PREFIX "challenger_" and the entry
** point sqlite3_challenger_init, which registers challenger_score(),
** challenger_decision(), challenger_score_features(), challenger_model_id(),
** challenger_model_threshold(), challenger_shap_values() and the table
** challenger_score_model_info.  So any bundle can be loaded beside the
** champion's as the challenger (`.load DIR/challenger` in the sqlite3 shell:
** the file name challenger.so selects that entry point).
**
** Symbol binding: SQLite dlopen()s extensions with RTLD_GLOBAL.  After a hot
** swap the process holds two model libraries that both define credit_*; a
** default-visibility call would bind to the FIRST one loaded.  The model ABI
** is therefore declared "protected" here (still exported, but calls from this
** library bind to its own definitions), and sqlite3_api is hidden.
*/
#ifndef SCORE_EXT_PREFIX
#define SCORE_EXT_PREFIX ""
#define SCORE_EXT_ENTRY sqlite3_score_init
#endif
#include <sqlite3ext.h>

#pragma GCC visibility push(hidden)
SQLITE_EXTENSION_INIT1
#pragma GCC visibility pop

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CREDIT_ABI __attribute__((visibility("protected")))
CREDIT_ABI int32_t credit_num_features(void);
CREDIT_ABI double credit_predict_row(const float *x);
CREDIT_ABI void credit_predict_batch(const float *x, int64_t n, double *out);
CREDIT_ABI const char *credit_model_id(void);
CREDIT_ABI double credit_threshold(void);
CREDIT_ABI const char *credit_manifest_sha256(void);
CREDIT_ABI int credit_refuses(double p, double threshold);
/* TreeSHAP, out = n_features + 1 doubles; NULL in libraries built without it (weak, resolved at link). */
extern void credit_shap_impl(const float *x, double *out) __attribute__((weak, visibility("hidden")));

typedef struct ScoreCtx {
  sqlite3 *db;
  int refs;            /* functions + module + connected vtabs holding this */
  int n_features;
  double threshold;
  const char *model_id;
  float *buf;          /* 64-byte aligned, n_features floats */
  sqlite3_stmt *lookup; /* cached lookup statement, or NULL */
#ifdef SCORE_EXT_BLOB_LOOKUP
  sqlite3_blob *blob;
#endif
  int vtab_connected;  /* score_model_info connected: the close hook is armed */
} ScoreCtx;

static void ctx_release_cache(ScoreCtx *c) {
  if (c->lookup) {
    sqlite3_finalize(c->lookup);
    c->lookup = 0;
  }
#ifdef SCORE_EXT_BLOB_LOOKUP
  if (c->blob) {
    sqlite3_blob_close(c->blob);
    c->blob = 0;
  }
#endif
}

static void ctx_unref(void *p) {
  ScoreCtx *c = (ScoreCtx *)p;
  if (--c->refs > 0) return;
  ctx_release_cache(c);
  free(c->buf);
  sqlite3_free(c);
}

static const char *type_name(int t) {
  switch (t) {
    case SQLITE_INTEGER: return "INTEGER";
    case SQLITE_FLOAT: return "REAL";
    case SQLITE_TEXT: return "TEXT";
    case SQLITE_BLOB: return "BLOB";
    default: return "NULL";
  }
}

/* ---------------------------------------------------------------- vtab -- */

typedef struct InfoVtab {
  sqlite3_vtab base;
  ScoreCtx *ctx;
} InfoVtab;

typedef struct InfoCursor {
  sqlite3_vtab_cursor base;
  int row;
} InfoCursor;

static int info_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
                        char **err) {
  (void)argc; (void)argv; (void)err;
  int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(model_id TEXT, n_features INTEGER, threshold REAL)");
  if (rc != SQLITE_OK) return rc;
  InfoVtab *v = sqlite3_malloc(sizeof(*v));
  if (!v) return SQLITE_NOMEM;
  memset(v, 0, sizeof(*v));
  v->ctx = (ScoreCtx *)aux;
  v->ctx->refs++;
  v->ctx->vtab_connected = 1;
  *out = &v->base;
  return SQLITE_OK;
}

static int info_disconnect(sqlite3_vtab *vt) {
  InfoVtab *v = (InfoVtab *)vt;
  v->ctx->vtab_connected = 0;
  ctx_release_cache(v->ctx); /* the close hook: runs before sqlite3_close's busy check */
  ctx_unref(v->ctx);
  sqlite3_free(v);
  return SQLITE_OK;
}

static int info_best_index(sqlite3_vtab *vt, sqlite3_index_info *info) {
  (void)vt;
  info->estimatedCost = 1.0;
  info->estimatedRows = 1;
  return SQLITE_OK;
}

static int info_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out) {
  (void)vt;
  InfoCursor *cur = sqlite3_malloc(sizeof(*cur));
  if (!cur) return SQLITE_NOMEM;
  memset(cur, 0, sizeof(*cur));
  *out = &cur->base;
  return SQLITE_OK;
}

static int info_close(sqlite3_vtab_cursor *cur) {
  sqlite3_free(cur);
  return SQLITE_OK;
}

static int info_filter(sqlite3_vtab_cursor *cur, int idx, const char *idxStr, int argc, sqlite3_value **argv) {
  (void)idx; (void)idxStr; (void)argc; (void)argv;
  ((InfoCursor *)cur)->row = 0;
  return SQLITE_OK;
}

static int info_next(sqlite3_vtab_cursor *cur) {
  ((InfoCursor *)cur)->row++;
  return SQLITE_OK;
}

static int info_eof(sqlite3_vtab_cursor *cur) { return ((InfoCursor *)cur)->row > 0; }

static int info_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col) {
  ScoreCtx *c = ((InfoVtab *)cur->pVtab)->ctx;
  switch (col) {
    case 0: sqlite3_result_text(ctx, c->model_id, -1, SQLITE_TRANSIENT); break;
    case 1: sqlite3_result_int(ctx, c->n_features); break;
    default: sqlite3_result_double(ctx, c->threshold); break;
  }
  return SQLITE_OK;
}

static int info_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid) {
  *rowid = ((InfoCursor *)cur)->row + 1;
  return SQLITE_OK;
}

static const sqlite3_module info_module = {
    .iVersion = 0,
    .xCreate = 0, /* eponymous-only */
    .xConnect = info_connect,
    .xBestIndex = info_best_index,
    .xDisconnect = info_disconnect,
    .xOpen = info_open,
    .xClose = info_close,
    .xFilter = info_filter,
    .xNext = info_next,
    .xEof = info_eof,
    .xColumn = info_column,
    .xRowid = info_rowid,
};

/* Make sure score_model_info is connected, so that closing the connection finalizes our statement. */
static int arm_close_hook(ScoreCtx *c) {
  if (c->vtab_connected) return SQLITE_OK;
  sqlite3_stmt *s = 0;
  int rc = sqlite3_prepare_v2(c->db, "SELECT 1 FROM main." SCORE_EXT_PREFIX "score_model_info", -1, &s, 0);
  sqlite3_finalize(s);
  if (rc == SQLITE_OK && !c->vtab_connected) rc = SQLITE_INTERNAL;
  return rc;
}

/* ------------------------------------------------------------- scoring -- */

/* Probability for the row in c->buf; on failure sets an error on ctx and returns NAN. */
static double predict_buf(sqlite3_context *ctx, ScoreCtx *c, const char *fname) {
  double p = credit_predict_row(c->buf);
  if (!(p >= 0.0 && p <= 1.0)) { /* NaN or out of range: never hand that to SQL */
    char *msg = sqlite3_mprintf("%s: the model returned %f, not a probability", fname, p);
    sqlite3_result_error(ctx, msg ? msg : "model returned an invalid probability", -1);
    sqlite3_free(msg);
    return NAN;
  }
  return p;
}

static int check_len(sqlite3_context *ctx, ScoreCtx *c, const char *what, int nbytes) {
  int expected = 4 * c->n_features;
  if (nbytes == expected) return 1;
  char *msg;
  if (nbytes % 4 == 0)
    msg = sqlite3_mprintf("%s: feature BLOB must be %d bytes (%d float32 features), got %d bytes (%d features)",
                          what, expected, c->n_features, nbytes, nbytes / 4);
  else
    msg = sqlite3_mprintf("%s: feature BLOB must be %d bytes (%d float32 features), got %d bytes (not a multiple of 4)",
                          what, expected, c->n_features, nbytes);
  sqlite3_result_error(ctx, msg ? msg : "wrong feature BLOB length", -1);
  sqlite3_free(msg);
  return 0;
}

/*
** Look up client `id` into c->buf.  Returns 1 found, 0 unknown client,
** -1 error (already set on ctx).
*/
#ifndef SCORE_EXT_BLOB_LOOKUP
static int lookup_row(sqlite3_context *ctx, ScoreCtx *c, sqlite3_int64 id, const char *fname) {
  int rc;
  if (!c->lookup) {
    rc = sqlite3_prepare_v3(c->db, "SELECT x FROM main.features WHERE client_id=?1", -1,
                            SQLITE_PREPARE_PERSISTENT, &c->lookup, 0);
    if (rc == SQLITE_OK) rc = arm_close_hook(c);
    if (rc != SQLITE_OK) {
      char *msg = rc == SQLITE_INTERNAL
                      ? sqlite3_mprintf("%s: a table named " SCORE_EXT_PREFIX "score_model_info hides the extension's own", fname)
                      : sqlite3_mprintf("%s: cannot read main.features: %s", fname, sqlite3_errmsg(c->db));
      ctx_release_cache(c);
      sqlite3_result_error(ctx, msg ? msg : "cannot read main.features", -1);
      sqlite3_result_error_code(ctx, rc == SQLITE_INTERNAL ? SQLITE_ERROR : rc);
      sqlite3_free(msg);
      return -1;
    }
  }
  sqlite3_stmt *s = c->lookup;
  sqlite3_bind_int64(s, 1, id);
  rc = sqlite3_step(s);
  int found = 0;
  if (rc == SQLITE_ROW) {
    int t = sqlite3_column_type(s, 0);
    int n = sqlite3_column_bytes(s, 0);
    if (t != SQLITE_BLOB) {
      char *msg = sqlite3_mprintf("%s: features.x of client_id %lld is %s, not a BLOB", fname, id, type_name(t));
      sqlite3_result_error(ctx, msg ? msg : "features.x is not a BLOB", -1);
      sqlite3_free(msg);
      found = -1;
    } else {
      char what[96];
      sqlite3_snprintf(sizeof what, what, "%s: features.x of client_id %lld", fname, id);
      if (check_len(ctx, c, what, n)) {
        memcpy(c->buf, sqlite3_column_blob(s, 0), (size_t)n);
        found = 1;
      } else {
        found = -1;
      }
    }
  } else if (rc != SQLITE_DONE) {
    char *msg = sqlite3_mprintf("%s: reading features failed: %s", fname, sqlite3_errmsg(c->db));
    sqlite3_result_error(ctx, msg ? msg : "reading features failed", -1);
    sqlite3_result_error_code(ctx, rc);
    sqlite3_free(msg);
    found = -1;
  }
  sqlite3_reset(s);
  return found;
}
#else
static int lookup_row(sqlite3_context *ctx, ScoreCtx *c, sqlite3_int64 id, const char *fname) {
  int rc;
  if (c->blob) {
    rc = sqlite3_blob_reopen(c->blob, id);
    if (rc != SQLITE_OK) { /* unknown rowid (or expired handle): the handle is unusable now */
      sqlite3_blob_close(c->blob);
      c->blob = 0;
    }
  } else {
    rc = arm_close_hook(c);
    if (rc == SQLITE_OK) rc = sqlite3_blob_open(c->db, "main", "features", "x", id, 0, &c->blob);
    if (rc != SQLITE_OK && c->blob) {
      sqlite3_blob_close(c->blob);
      c->blob = 0;
    }
  }
  if (rc != SQLITE_OK) {
    /* blob_open reports "no such rowid" as SQLITE_ERROR: treat it as unknown */
    const char *em = sqlite3_errmsg(c->db);
    if (rc == SQLITE_ERROR && em && strncmp(em, "no such rowid", 13) == 0) return 0;
    char *msg = sqlite3_mprintf("%s: reading features failed: %s", fname, em);
    sqlite3_result_error(ctx, msg ? msg : "reading features failed", -1);
    sqlite3_free(msg);
    return -1;
  }
  int n = sqlite3_blob_bytes(c->blob);
  char what[96];
  sqlite3_snprintf(sizeof what, what, "%s: features.x of client_id %lld", fname, id);
  if (!check_len(ctx, c, what, n)) return -1;
  rc = sqlite3_blob_read(c->blob, c->buf, n, 0);
  if (rc != SQLITE_OK) {
    sqlite3_result_error(ctx, "reading features failed", -1);
    return -1;
  }
  return 1;
}
#endif

/* Shared by score() and decision(): 1 = probability in *p, 0 = NULL result set, -1 = error set. */
static int score_client(sqlite3_context *ctx, sqlite3_value *arg, const char *fname, double *p) {
  ScoreCtx *c = (ScoreCtx *)sqlite3_user_data(ctx);
  int t = sqlite3_value_type(arg);
  if (t == SQLITE_NULL) {
    sqlite3_result_null(ctx);
    return 0;
  }
  if (t != SQLITE_INTEGER) {
    char *msg = sqlite3_mprintf("%s: client_id must be an INTEGER, got %s", fname, type_name(t));
    sqlite3_result_error(ctx, msg ? msg : "client_id must be an INTEGER", -1);
    sqlite3_free(msg);
    return -1;
  }
  int found = lookup_row(ctx, c, sqlite3_value_int64(arg), fname);
  if (found <= 0) {
    if (found == 0) sqlite3_result_null(ctx);
    return found;
  }
  *p = predict_buf(ctx, c, fname);
  return isnan(*p) ? -1 : 1;
}

static void fn_score(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  double p;
  if (score_client(ctx, argv[0], SCORE_EXT_PREFIX "score(client_id)", &p) == 1) sqlite3_result_double(ctx, p);
}

static void fn_decision(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  double p;
  if (score_client(ctx, argv[0], SCORE_EXT_PREFIX "decision(client_id)", &p) == 1) {
    ScoreCtx *c = (ScoreCtx *)sqlite3_user_data(ctx);
    sqlite3_result_text(ctx, credit_refuses(p, c->threshold) ? "refuse" : "accept", -1, SQLITE_STATIC);
  }
}

static void fn_score_features(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  ScoreCtx *c = (ScoreCtx *)sqlite3_user_data(ctx);
  int t = sqlite3_value_type(argv[0]);
  if (t == SQLITE_NULL) {
    sqlite3_result_null(ctx);
    return;
  }
  if (t != SQLITE_BLOB) {
    char *msg = sqlite3_mprintf("score_features(x): x must be a BLOB of %d float32 features (%d bytes), got %s",
                                c->n_features, 4 * c->n_features, type_name(t));
    sqlite3_result_error(ctx, msg ? msg : "x must be a BLOB", -1);
    sqlite3_free(msg);
    return;
  }
  int n = sqlite3_value_bytes(argv[0]);
  if (!check_len(ctx, c, "score_features(x)", n)) return;
  if (n) memcpy(c->buf, sqlite3_value_blob(argv[0]), (size_t)n);
  double p = predict_buf(ctx, c, "score_features(x)");
  if (!isnan(p)) sqlite3_result_double(ctx, p);
}

static void fn_model_id(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc; (void)argv;
  ScoreCtx *c = (ScoreCtx *)sqlite3_user_data(ctx);
  sqlite3_result_text(ctx, c->model_id, -1, SQLITE_TRANSIENT);
}

static void fn_threshold(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc; (void)argv;
  ScoreCtx *c = (ScoreCtx *)sqlite3_user_data(ctx);
  sqlite3_result_double(ctx, c->threshold);
}

static void fn_shap_values(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  static const char *fname = SCORE_EXT_PREFIX "shap_values(client_id)";
  ScoreCtx *c = (ScoreCtx *)sqlite3_user_data(ctx);
  int t = sqlite3_value_type(argv[0]);
  if (t == SQLITE_NULL) {
    sqlite3_result_null(ctx);
    return;
  }
  if (t != SQLITE_INTEGER) {
    char *msg = sqlite3_mprintf("%s: client_id must be an INTEGER, got %s", fname, type_name(t));
    sqlite3_result_error(ctx, msg ? msg : "client_id must be an INTEGER", -1);
    sqlite3_free(msg);
    return;
  }
  int found = lookup_row(ctx, c, sqlite3_value_int64(argv[0]), fname);
  if (found <= 0) {
    if (found == 0) sqlite3_result_null(ctx);
    return;
  }
  double *phi = sqlite3_malloc64(sizeof(double) * ((sqlite3_uint64)c->n_features + 1));
  if (!phi) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  credit_shap_impl(c->buf, phi);
  sqlite3_str *s = sqlite3_str_new(c->db);
  sqlite3_str_appendchar(s, 1, '[');
  for (int i = 0; i <= c->n_features; i++) {
    if (!isfinite(phi[i])) { /* never hand NaN/inf to SQL */
      sqlite3_free(phi);
      sqlite3_free(sqlite3_str_finish(s));
      sqlite3_result_error(ctx, "shap_values(client_id): the model returned a non-finite contribution", -1);
      return;
    }
    sqlite3_str_appendf(s, i ? ",%!.17g" : "%!.17g", phi[i]);
  }
  sqlite3_str_appendchar(s, 1, ']');
  sqlite3_free(phi);
  int len = sqlite3_str_length(s);
  char *text = sqlite3_str_finish(s);
  if (!text) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_text(ctx, text, len, sqlite3_free);
}

/* -------------------------------------------------- portfolio: scores -- */

/*
** scores: eponymous virtual table (client_id INTEGER, probability REAL, decision TEXT), one row per
** row of main.features in client_id order, scored in blocks of SCORES_BLOCK rows by the library's batch
** entry credit_predict_batch (the compiled batch engine: the same trees summed in the same order as
** credit_predict_row, so probability == score(client_id) bit for bit).  Constraints on client_id
** (=, <, <=, >, >=) are pushed down to the scan; SQLite checks them again (omit = 0).  A row whose
** features.x is not a BLOB of 4 * n_features bytes, or whose model output is not a probability, fails
** the query when its probability or decision is read, with score()'s message: the same rows fail as
** with score(client_id).  The scan statements are owned by the table (cached, one per kind of
** constraint) and finalized by xDisconnect, which sqlite3_close() runs before its busy check.
*/
#ifndef SCORES_BLOCK
#define SCORES_BLOCK 64 /* rows a block: 32-1024 measured alike (demo, 416 features); small blocks stay in L1/L2 */
#endif
#define SCORES_EQ 1
#define SCORES_LO 2    /* client_id >= ?2 */
#define SCORES_HI 4    /* client_id <= ?3 */
#define SCORES_LO_GT 8 /* ... > ?2 instead */
#define SCORES_HI_LT 16 /* ... < ?3 instead */
#define SCORES_KINDS 32
#define SCORES_SKIP 32 /* neither probability nor decision is read: no scoring */

typedef struct ScoresVtab {
  sqlite3_vtab base;
  ScoreCtx *ctx;
  sqlite3_stmt *cached[SCORES_KINDS]; /* idle scan statements, by kind (idxNum & 31) */
} ScoresVtab;

/* per row of a block: why its probability cannot be read (0: it can) */
enum { ROW_OK = 0, ROW_NOT_BLOB, ROW_BAD_LENGTH, ROW_NOT_PROBABILITY };

typedef struct ScoresCursor {
  sqlite3_vtab_cursor base;
  sqlite3_stmt *scan;
  int kind;
  int skip;      /* SCORES_SKIP: ids only */
  int n, i;      /* rows in the block, current row */
  int done;      /* the scan has no more rows */
  sqlite3_int64 *ids;
  float *x;      /* SCORES_BLOCK * n_features, 64-byte aligned */
  double *p;
  int *status;   /* ROW_* per row, and the BLOB's type or length for the message */
  int *detail;
} ScoresCursor;

/* The scan of one kind of constraint (sqlite3_free it). */
static char *scores_sql(int kind) {
  return sqlite3_mprintf("SELECT client_id, x FROM main.features%s%s%s%s%s", kind & 7 ? " WHERE" : "",
                         kind & SCORES_EQ ? " client_id = ?1" : "",
                         kind & SCORES_LO ? (kind & SCORES_EQ ? " AND" : "") : "",
                         kind & SCORES_LO ? (kind & SCORES_LO_GT ? " client_id > ?2" : " client_id >= ?2") : "",
                         kind & SCORES_HI ? (kind & SCORES_HI_LT ? (kind & 3 ? " AND client_id < ?3" : " client_id < ?3")
                                                                 : (kind & 3 ? " AND client_id <= ?3" : " client_id <= ?3"))
                                          : "");
}

static int scores_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
                          char **err) {
  (void)argc; (void)argv; (void)err;
  int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(client_id INTEGER, probability REAL, decision TEXT)");
  if (rc != SQLITE_OK) return rc;
  sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY); /* like score(): not from an untrusted file's schema */
  ScoresVtab *v = sqlite3_malloc(sizeof(*v));
  if (!v) return SQLITE_NOMEM;
  memset(v, 0, sizeof(*v));
  v->ctx = (ScoreCtx *)aux;
  v->ctx->refs++;
  *out = &v->base;
  return SQLITE_OK;
}

static int scores_disconnect(sqlite3_vtab *vt) {
  ScoresVtab *v = (ScoresVtab *)vt;
  for (int k = 0; k < SCORES_KINDS; k++) sqlite3_finalize(v->cached[k]);
  ctx_unref(v->ctx);
  sqlite3_free(v);
  return SQLITE_OK;
}

static int scores_best_index(sqlite3_vtab *vt, sqlite3_index_info *info) {
  (void)vt;
  int idx = 0, argn = 0, slot[3] = {-1, -1, -1};
  for (int i = 0; i < info->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = info->aConstraint + i;
    if (!c->usable || (c->iColumn != 0 && c->iColumn != -1)) continue;
    int bit = 0, s = 0;
    switch (c->op) {
      case SQLITE_INDEX_CONSTRAINT_EQ: bit = SCORES_EQ; s = 0; break;
      case SQLITE_INDEX_CONSTRAINT_GE: bit = SCORES_LO; s = 1; break;
      case SQLITE_INDEX_CONSTRAINT_GT: bit = SCORES_LO | SCORES_LO_GT; s = 1; break;
      case SQLITE_INDEX_CONSTRAINT_LE: bit = SCORES_HI; s = 2; break;
      case SQLITE_INDEX_CONSTRAINT_LT: bit = SCORES_HI | SCORES_HI_LT; s = 2; break;
      default: continue;
    }
    if (idx & bit & 7) continue; /* one of each kind is enough: SQLite checks them all again */
    idx |= bit;
    slot[s] = i;
  }
  /* arguments in the order ?1 (eq), ?2 (low), ?3 (high) of the kind's statement */
  for (int s = 0; s < 3; s++)
    if (slot[s] >= 0) {
      info->aConstraintUsage[slot[s]].argvIndex = ++argn;
      info->aConstraintUsage[slot[s]].omit = 0;
    }
  if (!(info->colUsed & 6)) idx |= SCORES_SKIP;
  info->idxNum = idx;
  info->idxStr = scores_sql(idx & (SCORES_KINDS - 1)); /* shown by EXPLAIN QUERY PLAN */
  info->needToFreeIdxStr = 1;
  if (idx & SCORES_EQ) {
    info->estimatedCost = 20.0;
    info->estimatedRows = 1;
    info->idxFlags = SQLITE_INDEX_SCAN_UNIQUE;
  } else {
    double rows = (idx & SCORES_LO) && (idx & SCORES_HI) ? 25000.0 : (idx & (SCORES_LO | SCORES_HI)) ? 250000.0 : 1000000.0;
    info->estimatedRows = (sqlite3_int64)rows;
    info->estimatedCost = rows; /* a block-scored row costs about one B-tree step */
  }
  if (info->nOrderBy == 1 && info->aOrderBy[0].iColumn <= 0 && !info->aOrderBy[0].desc) info->orderByConsumed = 1;
  return SQLITE_OK;
}

static int scores_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out) {
  ScoresVtab *v = (ScoresVtab *)vt;
  int nf = v->ctx->n_features;
  ScoresCursor *cur = sqlite3_malloc(sizeof(*cur));
  if (!cur) return SQLITE_NOMEM;
  memset(cur, 0, sizeof(*cur));
  size_t xbytes = ((size_t)SCORES_BLOCK * (size_t)nf * sizeof(float) + 63) & ~(size_t)63;
  cur->x = aligned_alloc(64, xbytes);
  cur->ids = sqlite3_malloc64(sizeof(sqlite3_int64) * SCORES_BLOCK);
  cur->p = sqlite3_malloc64(sizeof(double) * SCORES_BLOCK);
  cur->status = sqlite3_malloc64(sizeof(int) * 2 * SCORES_BLOCK);
  cur->detail = cur->status ? cur->status + SCORES_BLOCK : 0;
  if (!cur->x || !cur->ids || !cur->p || !cur->status) {
    free(cur->x);
    sqlite3_free(cur->ids);
    sqlite3_free(cur->p);
    sqlite3_free(cur->status);
    sqlite3_free(cur);
    return SQLITE_NOMEM;
  }
  *out = &cur->base;
  return SQLITE_OK;
}

/* Hand the cursor's scan statement back to the table's cache (or finalize it if the slot is taken). */
static void scores_release_scan(ScoresCursor *cur) {
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

static int scores_close(sqlite3_vtab_cursor *vc) {
  ScoresCursor *cur = (ScoresCursor *)vc;
  scores_release_scan(cur);
  free(cur->x);
  sqlite3_free(cur->ids);
  sqlite3_free(cur->p);
  sqlite3_free(cur->status);
  sqlite3_free(cur);
  return SQLITE_OK;
}

static int scores_error(ScoresCursor *cur, char *msg, int rc) {
  sqlite3_vtab *vt = cur->base.pVtab;
  sqlite3_free(vt->zErrMsg);
  vt->zErrMsg = msg;
  return msg ? rc : SQLITE_NOMEM;
}

/* Read the next block of rows from the scan and score it. */
static int scores_fill(ScoresCursor *cur) {
  ScoresVtab *v = (ScoresVtab *)cur->base.pVtab;
  ScoreCtx *c = v->ctx;
  int nf = c->n_features, n = 0, rc = SQLITE_OK;
  cur->i = 0;
  cur->n = 0;
  while (n < SCORES_BLOCK && !cur->done) {
    rc = sqlite3_step(cur->scan);
    if (rc == SQLITE_DONE) {
      cur->done = 1;
      break;
    }
    if (rc != SQLITE_ROW)
      return scores_error(cur, sqlite3_mprintf(SCORE_EXT_PREFIX "scores: reading features failed: %s",
                                               sqlite3_errmsg(c->db)), rc);
    cur->ids[n] = sqlite3_column_int64(cur->scan, 0);
    cur->status[n] = ROW_OK;
    if (!cur->skip) {
      float *xr = cur->x + (size_t)n * nf;
      int t = sqlite3_column_type(cur->scan, 1);
      int bytes = sqlite3_column_bytes(cur->scan, 1);
      if (t == SQLITE_BLOB && bytes == 4 * nf) {
        memcpy(xr, sqlite3_column_blob(cur->scan, 1), (size_t)bytes);
      } else { /* scored as zeros, reported if read */
        cur->status[n] = t != SQLITE_BLOB ? ROW_NOT_BLOB : ROW_BAD_LENGTH;
        cur->detail[n] = t != SQLITE_BLOB ? t : bytes;
        memset(xr, 0, sizeof(float) * (size_t)nf);
      }
    }
    n++;
  }
  if (n && !cur->skip) {
    credit_predict_batch(cur->x, n, cur->p);
    for (int r = 0; r < n; r++)
      if (cur->status[r] == ROW_OK && !(cur->p[r] >= 0.0 && cur->p[r] <= 1.0)) cur->status[r] = ROW_NOT_PROBABILITY;
  }
  cur->n = n;
  return SQLITE_OK;
}

/* score()'s error for a row whose probability cannot be read */
static void scores_row_error(sqlite3_context *ctx, ScoresCursor *cur, int nf) {
  const char *fname = SCORE_EXT_PREFIX "scores";
  sqlite3_int64 id = cur->ids[cur->i];
  int d = cur->detail[cur->i];
  char *msg;
  switch (cur->status[cur->i]) {
    case ROW_NOT_BLOB:
      msg = sqlite3_mprintf("%s: features.x of client_id %lld is %s, not a BLOB", fname, id, type_name(d));
      break;
    case ROW_BAD_LENGTH:
      msg = sqlite3_mprintf("%s: features.x of client_id %lld: feature BLOB must be %d bytes (%d float32 features), "
                            "got %d bytes", fname, id, 4 * nf, nf, d);
      break;
    default:
      msg = sqlite3_mprintf("%s: the model returned %f for client_id %lld, not a probability", fname,
                            cur->p[cur->i], id);
  }
  sqlite3_result_error(ctx, msg ? msg : "scores: invalid row", -1);
  sqlite3_free(msg);
}

static int scores_filter(sqlite3_vtab_cursor *vc, int idx, const char *idxStr, int argc, sqlite3_value **argv) {
  (void)idxStr;
  ScoresCursor *cur = (ScoresCursor *)vc;
  ScoresVtab *v = (ScoresVtab *)vc->pVtab;
  scores_release_scan(cur);
  cur->kind = idx & (SCORES_KINDS - 1);
  cur->skip = idx & SCORES_SKIP;
  cur->done = 0;
  cur->n = cur->i = 0;
  if (v->cached[cur->kind]) {
    cur->scan = v->cached[cur->kind];
    v->cached[cur->kind] = 0;
  } else {
    char *sql = scores_sql(cur->kind);
    if (!sql) return SQLITE_NOMEM;
    int rc = sqlite3_prepare_v3(v->ctx->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &cur->scan, 0);
    sqlite3_free(sql);
    if (rc != SQLITE_OK) {
      char *msg = sqlite3_mprintf(SCORE_EXT_PREFIX "scores: cannot read main.features: %s", sqlite3_errmsg(v->ctx->db));
      sqlite3_finalize(cur->scan);
      cur->scan = 0;
      return scores_error(cur, msg, rc);
    }
  }
  int a = 0;
  for (int bit = 0; bit < 3; bit++)
    if (cur->kind & (1 << bit)) {
      if (a >= argc) return scores_error(cur, sqlite3_mprintf("scores: missing constraint"), SQLITE_INTERNAL);
      sqlite3_bind_value(cur->scan, bit + 1, argv[a++]);
    }
  return scores_fill(cur);
}

static int scores_next(sqlite3_vtab_cursor *vc) {
  ScoresCursor *cur = (ScoresCursor *)vc;
  if (++cur->i < cur->n) return SQLITE_OK;
  if (cur->done) return SQLITE_OK;
  return scores_fill(cur);
}

static int scores_eof(sqlite3_vtab_cursor *vc) {
  ScoresCursor *cur = (ScoresCursor *)vc;
  return cur->i >= cur->n;
}

static int scores_column(sqlite3_vtab_cursor *vc, sqlite3_context *ctx, int col) {
  ScoresCursor *cur = (ScoresCursor *)vc;
  if (col > 0 && cur->status[cur->i] != ROW_OK) {
    scores_row_error(ctx, cur, ((ScoresVtab *)vc->pVtab)->ctx->n_features);
    return SQLITE_OK;
  }
  switch (col) {
    case 0: sqlite3_result_int64(ctx, cur->ids[cur->i]); break;
    case 1: sqlite3_result_double(ctx, cur->p[cur->i]); break;
    default: {
      ScoreCtx *c = ((ScoresVtab *)vc->pVtab)->ctx;
      sqlite3_result_text(ctx, credit_refuses(cur->p[cur->i], c->threshold) ? "refuse" : "accept", -1, SQLITE_STATIC);
    }
  }
  return SQLITE_OK;
}

static int scores_rowid(sqlite3_vtab_cursor *vc, sqlite3_int64 *rowid) {
  ScoresCursor *cur = (ScoresCursor *)vc;
  *rowid = cur->ids[cur->i];
  return SQLITE_OK;
}

static const sqlite3_module scores_module = {
    .iVersion = 0,
    .xCreate = 0, /* eponymous-only */
    .xConnect = scores_connect,
    .xBestIndex = scores_best_index,
    .xDisconnect = scores_disconnect,
    .xOpen = scores_open,
    .xClose = scores_close,
    .xFilter = scores_filter,
    .xNext = scores_next,
    .xEof = scores_eof,
    .xColumn = scores_column,
    .xRowid = scores_rowid,
};

#include "explanations.h" /* the `explanations` table: TreeSHAP of the portfolio in blocks */

/* ---------------------------------------------------------- entry point -- */

#ifdef _WIN32
__declspec(dllexport)
#endif
__attribute__((visibility("default"))) int SCORE_EXT_ENTRY(sqlite3 *db, char **pzErrMsg,
                                                             const sqlite3_api_routines *pApi) {
  SQLITE_EXTENSION_INIT2(pApi);
  int n = credit_num_features();
  const char *mid = credit_model_id();
  double thr = credit_threshold();
  const char *manifest_sha = credit_manifest_sha256();
  if (n <= 0 || n > (1 << 20) || !mid || !manifest_sha || !(thr >= 0.0 && thr <= 1.0)) {
    *pzErrMsg = sqlite3_mprintf("score extension: invalid model library (n_features=%d, threshold=%f)", n, thr);
    return SQLITE_ERROR;
  }
  ScoreCtx *c = sqlite3_malloc(sizeof(*c));
  if (!c) return SQLITE_NOMEM;
  memset(c, 0, sizeof(*c));
  size_t bytes = ((size_t)n * sizeof(float) + 63) & ~(size_t)63;
  c->buf = aligned_alloc(64, bytes);
  if (!c->buf) {
    sqlite3_free(c);
    return SQLITE_NOMEM;
  }
  c->db = db;
  c->n_features = n;
  c->threshold = thr;
  c->model_id = mid;
  c->refs = 1; /* held by this function until the end */

  static const struct {
    const char *name;
    int nargs;
    int flags;
    void (*fn)(sqlite3_context *, int, sqlite3_value **);
  } fns[] = {
      /* score/decision read main.features: not DETERMINISTIC (the answer changes when the table does, so
         they must not appear in indexes, CHECK or generated columns), DIRECTONLY (an untrusted database's
         views/triggers cannot call them; TEMP views of this connection still can). */
      {SCORE_EXT_PREFIX "score", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, fn_score},
      {SCORE_EXT_PREFIX "decision", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, fn_decision},
      {SCORE_EXT_PREFIX "score_features", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, fn_score_features},
      {SCORE_EXT_PREFIX "model_id", 0, SQLITE_UTF8 | SQLITE_DETERMINISTIC, fn_model_id},
      {SCORE_EXT_PREFIX "model_threshold", 0, SQLITE_UTF8 | SQLITE_DETERMINISTIC, fn_threshold},
  };
  int rc = SQLITE_OK;
  for (size_t i = 0; rc == SQLITE_OK && i < sizeof fns / sizeof fns[0]; i++) {
    c->refs++; /* released by xDestroy, which SQLite also calls when registration fails */
    rc = sqlite3_create_function_v2(db, fns[i].name, fns[i].nargs, fns[i].flags, c, fns[i].fn, 0, 0, ctx_unref);
  }
  if (rc == SQLITE_OK && credit_shap_impl) {
    c->refs++;
    rc = sqlite3_create_function_v2(db, SCORE_EXT_PREFIX "shap_values", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, c, fn_shap_values, 0, 0,
                                    ctx_unref);
  }
  if (rc == SQLITE_OK) {
    c->refs++;
    rc = sqlite3_create_module_v2(db, SCORE_EXT_PREFIX "score_model_info", &info_module, c, ctx_unref);
  }
  if (rc == SQLITE_OK) {
    c->refs++;
    rc = sqlite3_create_module_v2(db, SCORE_EXT_PREFIX "scores", &scores_module, c, ctx_unref);
  }
  if (rc == SQLITE_OK && credit_shap_rows_impl) {
    c->refs++;
    rc = sqlite3_create_module_v2(db, SCORE_EXT_PREFIX "explanations", &explanations_module, c, ctx_unref);
  }
  if (rc != SQLITE_OK) *pzErrMsg = sqlite3_mprintf("score extension: %s", sqlite3_errmsg(db));
  ctx_unref(c);
  return rc;
}
