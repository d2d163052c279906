/*
** Hand-written stand-in for the generated model C (tests only).
** Implements the C ABI of docs/contracts.md with 3 features, two small trees and a sigmoid;
** tests/native_stub/build.py mirrors it in Python (predict_reference) and builds it together with
** every app/native C file exactly as `credit compile` does.  NaN goes to the "not less than" branch.
** Test hook: x[2] == 777 makes the model return NaN (score() must turn that into an SQL error).
*/
#include <math.h>
#include <stdint.h>

#ifndef STUB_MODEL_ID
#define STUB_MODEL_ID "0000000000000000000000000000000000000000000000000000000000000000"
#endif
#ifndef STUB_MANIFEST_SHA256
#define STUB_MANIFEST_SHA256 ""
#endif
#ifndef STUB_BIAS
#define STUB_BIAS -1.0
#endif
#ifndef STUB_THRESHOLD
#define STUB_THRESHOLD 0.35
#endif
#define STUB_N 3

static double tree0(const float *x) {
  if (!(x[0] < 0.5f)) return x[1] < 2.0f ? 0.8 : 0.3;
  return x[2] < -1.0f ? -0.6 : -0.1;
}

static double tree1(const float *x) {
  if (x[1] < 1.0f) return -0.4;
  return !(x[2] < 0.25f) ? 0.5 : 0.1;
}

/* Like the generated code: exported functions only call static helpers. */
static double predict_one(const float *x) {
  if (x[2] == 777.0f) return NAN;
  double margin = STUB_BIAS + tree0(x) + tree1(x);
  return 1.0 / (1.0 + exp(-margin));
}

int32_t credit_num_features(void) { return STUB_N; }

double credit_predict_row(const float *x) { return predict_one(x); }

void credit_predict_batch(const float *x, int64_t n, double *out) {
  for (int64_t i = 0; i < n; i++) out[i] = predict_one(x + i * STUB_N);
}

const char *credit_model_id(void) { return STUB_MODEL_ID; }

double credit_threshold(void) { return STUB_THRESHOLD; }

const char *credit_manifest_sha256(void) { return STUB_MANIFEST_SHA256; }

int credit_refuses(double p, double threshold) { return p >= threshold; }
