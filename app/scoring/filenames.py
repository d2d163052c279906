"""The file names of a model folder (a bundle), owned here; every reader and writer takes them from this module.

manifest.json     the model's description (app.scoring.bundle.Manifest)
model.txt         LightGBM's text, the source of truth the library is compiled from
model-<id12>.so   the compiled library (its name carries the model id: dlopen caches by path)
score.so          a link to it: the sqlite3 shell's `.load DIR/score` finds sqlite3_score_init
challenger.so     in a bundle, the same library under the name whose entry point is sqlite3_challenger_init
reference.npy     the training sample drift is measured against
reference_scores.npy  the scores of that sample
report.html       the training report
"""

from __future__ import annotations

MANIFEST = "manifest.json"
MODEL_TEXT = "model.txt"
SCORE_LINK = "score.so"
CHALLENGER_LINK = "challenger.so"
REFERENCE = "reference.npy"
REFERENCE_SCORES = "reference_scores.npy"
TRAINING_REPORT = "report.html"
