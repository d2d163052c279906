"""One read-and-check of a folder's format manifest (app.features_parquet.read_format_manifest), used by the
batch scorer's features export (`credit export`, `credit features`) and by `credit partition`'s sources."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.data.distributed import SOURCES_FILE, SOURCES_FORMAT, DistributedError, read_sources_manifest
from app.features_parquet import EXPORT_FORMAT, FEATURES_FILE, read_format_manifest
from app.scoring.batch import BatchError, read_export_manifest

READERS = [
    pytest.param(read_export_manifest, FEATURES_FILE, EXPORT_FORMAT, BatchError, "credit export", id="export"),
    pytest.param(
        read_sources_manifest, SOURCES_FILE, SOURCES_FORMAT, DistributedError, "credit partition", id="sources"
    ),
]


def _write(folder, file, text: str):
    path = folder / file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("read, file, fmt, error, made_by", READERS)
def test_a_good_manifest_is_returned_whole(tmp_path, read, file, fmt, error, made_by):
    manifest = {"format": fmt, "partitions": [{"file": "part-00000.parquet", "rows": 3}], "rows": 3}
    _write(tmp_path, file, json.dumps(manifest))
    assert read(tmp_path) == manifest


@pytest.mark.parametrize("read, file, fmt, error, made_by", READERS)
def test_a_missing_manifest_names_the_file_and_the_command(tmp_path, read, file, fmt, error, made_by):
    with pytest.raises(error) as info:
        read(tmp_path)
    assert str(info.value) == f"{tmp_path / file} not found: is {tmp_path} a `{made_by}` folder?"


@pytest.mark.parametrize("read, file, fmt, error, made_by", READERS)
def test_invalid_json_names_the_file(tmp_path, read, file, fmt, error, made_by):
    path = _write(tmp_path, file, '{"format": ')
    with pytest.raises(error, match="invalid JSON") as info:
        read(tmp_path)
    assert str(info.value).startswith(f"{path}: invalid JSON (")


@pytest.mark.parametrize("read, file, fmt, error, made_by", READERS)
def test_the_other_folders_format_is_refused(tmp_path, read, file, fmt, error, made_by):
    other = SOURCES_FORMAT if fmt == EXPORT_FORMAT else EXPORT_FORMAT
    path = _write(tmp_path, file, json.dumps({"format": other}))
    with pytest.raises(error) as info:
        read(tmp_path)
    assert str(info.value) == f"{path}: format {other!r}, expected {fmt!r}"


@settings(max_examples=60, deadline=None)
@given(
    document=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3),
        max_leaves=8,
    )
)
def test_any_json_document_is_either_the_expected_format_or_a_clear_error(tmp_path_factory, document):
    """The law: the reader returns the document exactly when it is an object whose format is the expected
    one; any other JSON document (a list, a number, an object without or with another format) raises the
    caller's error naming the file, never a KeyError/AttributeError."""
    folder = tmp_path_factory.mktemp("m")
    path = _write(folder, "m.json", json.dumps(document))
    ok = isinstance(document, dict) and document.get("format") == "f/1"
    if ok:
        assert read_format_manifest(folder, "m.json", "f/1", made_by="x", error=ValueError) == document
    else:
        with pytest.raises(LookupError) as info:
            read_format_manifest(folder, "m.json", "f/1", made_by="x", error=LookupError)
        assert str(info.value).startswith(f"{path}: format ")
