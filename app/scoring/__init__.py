"""Scoring: the verified model bundle, the compiled library's C ABI, connections, batch scoring."""
