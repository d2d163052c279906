/*
** score_ext_challenger.c -- score_ext.c again, with every SQL name prefixed "challenger_" and the entry
** point sqlite3_challenger_init, linked into every model library beside the plain one.  A connection
** loads the champion's library with sqlite3_score_init and the challenger's with sqlite3_challenger_init,
** and then has score() and challenger_score() side by side (app/scoring/db.py, docs/contracts.md).
** sqlite3_api is renamed so the two copies do not define the same hidden global.
*/
#define SCORE_EXT_PREFIX "challenger_"
#define SCORE_EXT_ENTRY sqlite3_challenger_init
#define sqlite3_api score_ext_challenger_api
#include "score_ext.c"
