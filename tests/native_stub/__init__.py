"""Hand-written stand-in model for tests of the SQLite extension (see stub_model.c and build.py)."""
