"""Integrity: damaged files raise one-line NCFError subclasses, never crash, hang or lie."""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ncf_datasource as ncf
from ncf_datasource.format import layout

from .test_ncf_strategies import assert_identical

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _table() -> pa.Table:
    rng = np.random.default_rng(11)
    n = 600
    return pa.table(
        {
            "id": np.arange(n),
            "s": pa.array([None if i % 7 == 0 else f"v{i % 13}" for i in range(n)]),
            "f": rng.random(n),
            "l": pa.array([[i, None] if i % 5 else None for i in range(n)]),
            "txt": pa.array([f"row number {i}" for i in range(n)]),
            "words": pa.array(
                [None if i % 11 == 0 else f"quickly final {WORDS[i % 5]} {i % 7} ideas" for i in range(n)]
            ),
            "price": pa.array([float("nan") if i % 97 == 0 else round(i * 0.37, 2) for i in range(n)]),
            "skew": pa.array([i * 1000 if i % 29 == 0 else i % 4 for i in range(n)], pa.int32()),
            "day": pa.array(np.datetime64("1995-01-01") + np.arange(n) // 3 + rng.integers(0, 9, n)),
        }
    )


WORDS = ["pinto", "beans", "deposits", "sleep", "accounts"]
ENCODINGS = {
    "s": "codes[rle[bitpack-aligned,patched]]",
    "words": "tokens[patched,patched-zigzag]",
    "price": "alp[patched-zigzag,delta,plain]",
    "skew": "patched[bitpack]",
    "day": "delta[patched-zigzag[for]]",
}


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    path = tmp_path_factory.mktemp("orig") / "good.ncf"
    table = _table()
    ncf.write_table(table, path, row_group_size=250, page_size=64, sort_key="id", encodings=ENCODINGS)
    return table, path.read_bytes()


def _read_everything(path, verify=True):
    with ncf.NCFFile(path, verify_checksums=verify) as f:
        table = f.read()
        f.lookup(17)
        return table


def _check(path, table, verify=True):
    """A damaged file either raises an NCFError with a one-line message naming the file,
    or (only when checksums are verified) reads back exactly the original."""
    try:
        got = _read_everything(path, verify)
    except ncf.NCFError as exc:
        message = str(exc)
        assert "\n" not in message and str(path) in message, message
        return
    if verify:
        assert_identical(got, table)


@FUZZ
@given(data=st.data())
def test_bit_flips_are_detected(tmp_path, original, data):
    table, blob = original
    buf = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] ^= 1 << data.draw(st.integers(0, 7))
    path = tmp_path / "flip.ncf"
    path.write_bytes(bytes(buf))
    _check(path, table)


@FUZZ
@given(cut=st.integers(0, 10**9))
def test_truncations_are_detected(tmp_path, original, cut):
    _, blob = original
    path = tmp_path / "cut.ncf"
    path.write_bytes(blob[: cut % len(blob)])
    with pytest.raises(ncf.NCFCorruptFileError):
        _read_everything(path)


@FUZZ
@given(data=st.data())
def test_random_bytes_in_the_footer_are_detected(tmp_path, original, data):
    table, blob = original
    footer_len = struct.unpack_from("<Q", blob, len(blob) - layout.TRAILER.size)[0]
    start = len(blob) - layout.TRAILER.size - footer_len
    pos = data.draw(st.integers(start, len(blob) - 1))
    junk = data.draw(st.binary(min_size=1, max_size=16))
    buf = bytearray(blob)
    buf[pos : pos + len(junk)] = junk
    path = tmp_path / "junk.ncf"
    path.write_bytes(bytes(buf[: len(blob)]))
    _check(path, table)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_unverified_reads_of_damaged_data_never_crash(tmp_path, original, data):
    table, blob = original
    footer_len = struct.unpack_from("<Q", blob, len(blob) - layout.TRAILER.size)[0]
    body_end = len(blob) - layout.TRAILER.size - footer_len
    buf = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(layout.HEADER.size, body_end - 1))
        buf[pos] = data.draw(st.integers(0, 255))
    path = tmp_path / "raw.ncf"
    path.write_bytes(bytes(buf))
    _check(path, table, verify=False)


def test_zero_length_short_and_foreign_files(tmp_path):
    cases = {
        "empty.ncf": b"",
        "short.ncf": b"NCF1\x01\x00",
        "text.ncf": b"hello world, this is not an NCF file at all" * 3,
        "parquet.ncf": b"PAR1" + b"\x00" * 40 + b"PAR1",
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ncf.NCFCorruptFileError, match=name):
            ncf.read_table(path)


def test_missing_file_is_an_ncf_error(tmp_path):
    with pytest.raises(ncf.NCFError, match="cannot open"):
        ncf.read_table(tmp_path / "nope.ncf")


def _set_version(blob: bytes, major: int, minor: int) -> bytes:
    buf = bytearray(blob)
    struct.pack_into("<HH", buf, 4, major, minor)
    struct.pack_into("<HH", buf, len(buf) - layout.TRAILER.size + 12, major, minor)
    return bytes(buf)


def _rewrite_footer(blob: bytes, change) -> bytes:
    footer_len, _, major, minor, codec, _ = layout.TRAILER.unpack_from(blob, len(blob) - layout.TRAILER.size)
    start = len(blob) - layout.TRAILER.size - footer_len
    footer = layout.parse_footer(blob[start : start + footer_len], codec, 1 << 30)
    change(footer)
    payload, trailer = layout.footer_bytes(footer, 3, start)
    return _set_version(blob[:start] + payload + trailer, major, minor)


def test_newer_major_version_is_refused(tmp_path, original):
    _, blob = original
    path = tmp_path / "v2.ncf"
    path.write_bytes(_set_version(blob, 2, 0))
    with pytest.raises(ncf.NCFVersionError, match="version 2.0"):
        ncf.read_table(path)


def test_newer_minor_version_with_unknown_keys_is_read(tmp_path, original):
    table, blob = original

    def add_future_things(footer):
        footer["future_key"] = {"anything": [1, 2]}
        footer["row_groups"][0]["columns"][0]["stats"]["bloom"] = "abc"
        footer["indexes"].append({"column": "id", "kind": "radix_spline", "block": [0, 0, 0]})

    path = tmp_path / "v1_7.ncf"
    path.write_bytes(_set_version(_rewrite_footer(blob, add_future_things), 1, 7))
    with ncf.NCFFile(path) as f:
        assert f.version == "1.7"
        assert_identical(f.read(), table)
        assert f.lookup(5).column("id").to_pylist() == [5]


def test_required_unknown_feature_is_refused(tmp_path, original):
    _, blob = original
    path = tmp_path / "feat.ncf"
    path.write_bytes(_rewrite_footer(blob, lambda f: f.__setitem__("required_features", ["encrypted_pages"])))
    with pytest.raises(ncf.NCFVersionError, match="encrypted_pages"):
        ncf.read_table(path)


def test_unknown_type_is_a_version_error(tmp_path, original):
    _, blob = original
    path = tmp_path / "type.ncf"
    path.write_bytes(_rewrite_footer(blob, lambda f: f["schema"][0]["type"].__setitem__("id", "variant")))
    with pytest.raises(ncf.NCFVersionError, match="variant"):
        ncf.read_table(path)


def test_unknown_encoding_is_a_version_error(tmp_path, original):
    _, blob = original
    with ncf.NCFFile(_write(tmp_path / "ok.ncf", blob)) as f:
        chunk = f.row_groups[0].columns["f"]
        page_at = chunk.offset + chunk.pages[0][0]
    buf = bytearray(blob)
    buf[page_at + 4] = 99  # page: u16 stream count, NONE validity stream (2 bytes), then the values stream
    path = _write(tmp_path / "enc.ncf", bytes(buf))
    with pytest.raises(ncf.NCFVersionError, match="encoding id 99"):
        ncf.read_table(path, verify_checksums=False)


def _write(path, blob):
    path.write_bytes(blob)
    return path


def test_footer_lengths_are_validated_before_allocating(tmp_path, original):
    _, blob = original
    buf = bytearray(blob)
    struct.pack_into("<Q", buf, len(buf) - layout.TRAILER.size, 2**62)
    path = _write(tmp_path / "huge.ncf", bytes(buf))
    with pytest.raises(ncf.NCFCorruptFileError, match="footer length"):
        ncf.read_table(path)

    def huge_chunk(footer):
        footer["row_groups"][0]["columns"][0]["length"] = 2**60

    path = _write(tmp_path / "chunk.ncf", _rewrite_footer(blob, huge_chunk))
    with pytest.raises(ncf.NCFCorruptFileError, match="chunk length"):
        ncf.read_table(path)


def test_error_messages_name_the_column_for_damaged_pages(tmp_path, original):
    _, blob = original
    with ncf.NCFFile(_write(tmp_path / "ok.ncf", blob)) as f:
        chunk = f.row_groups[1].columns["txt"]
    buf = bytearray(blob)
    buf[chunk.offset + chunk.length // 2] ^= 0xFF
    path = _write(tmp_path / "bad.ncf", bytes(buf))
    with pytest.raises(ncf.NCFCorruptFileError, match="column 'txt', row group 1: .*checksum"):
        ncf.read_table(path)
    assert ncf.read_table(path, columns=["id"]).num_rows == 600


def _footer_bomb(path, inflated: int) -> None:
    """A small NCF file whose zstd footer inflates to ``inflated`` bytes of valid JSON made of
    tiny lists (each costs a Python object when parsed), with a correct footer checksum."""
    import io

    import zstandard

    head = b'{"format":"NCF","notes":['
    tail = b"[]]}"
    unit = b"[]," * (1 << 18)
    count = (inflated - len(head) - len(tail)) // len(unit)
    sink = io.BytesIO()
    size = len(head) + count * len(unit) + len(tail)
    compressor = zstandard.ZstdCompressor(level=3, write_content_size=True)
    with compressor.stream_writer(sink, size=size, closefd=False) as writer:
        writer.write(head)
        for _ in range(count):
            writer.write(unit)
        writer.write(tail)
    payload = sink.getvalue()
    trailer = layout.TRAILER.pack(
        len(payload), layout.crc32c(payload), layout.VERSION_MAJOR, layout.VERSION_MINOR, 1, layout.MAGIC
    )
    path.write_bytes(layout.header() + b"\0" * 64 + payload + trailer)


def test_footer_bomb_fails_fast_with_little_memory(tmp_path):
    import time
    import tracemalloc

    path = tmp_path / "bomb.ncf"
    _footer_bomb(path, 256 << 20)
    assert path.stat().st_size < 64 << 10
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ncf.NCFCorruptFileError, match="bomb.ncf: invalid footer: zstd footer declares"):
            ncf.inspect(path)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0, elapsed
    assert peak < 100 << 20, peak


def test_large_footers_of_small_files_are_written_raw_and_read_back(tmp_path):
    metadata = {f"key{i}": "v" * 4000 for i in range(400)}  # 1.6 MB of JSON that zstd shrinks 100x
    table = pa.table({"x": [1, 2, 3]})
    ncf.write_table(table, tmp_path / "meta.ncf", metadata=metadata)
    blob = (tmp_path / "meta.ncf").read_bytes()
    assert blob[-8] == layout.CODEC_RAW  # the trailer's footer codec byte
    with ncf.NCFFile(tmp_path / "meta.ncf") as f:
        assert f.metadata == metadata
        assert_identical(f.read(), table.replace_schema_metadata(metadata))
