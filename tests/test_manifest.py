"""The batch manifest reader (core.manifest) on real files: CSV as the stdlib reads it, bad rows failing alone."""

import csv
import io
import json
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oris.core.manifest import ManifestError, read_manifest

COLUMNS = ("audio", "text", "output")
REQUIRED = ("audio",)


def write(path, text):
    """The text byte for byte: no newline translation."""
    path.write_bytes(text.encode("utf-8"))
    return path


def test_inch_marks_in_unquoted_fields_swallow_no_rows(tmp_path):
    path = write(tmp_path / "lines.csv", 'audio,text\na.wav,He is 5" tall\nb.wav,hi\nx.wav,there\ny.wav,you\n'
                                         'c.wav,A 12" pizza\n')
    rows = read_manifest(path, COLUMNS, REQUIRED)
    assert [(r.number, r.where, r.error) for r in rows] == [(n, f"line {n + 1}", "") for n in range(1, 6)]
    assert [r.fields for r in rows] == [{"audio": "a.wav", "text": 'He is 5" tall'}, {"audio": "b.wav", "text": "hi"},
                                        {"audio": "x.wav", "text": "there"}, {"audio": "y.wav", "text": "you"},
                                        {"audio": "c.wav", "text": 'A 12" pizza'}]
    result = subprocess.run([sys.executable, "-m", "oris", "rows", str(path)], capture_output=True, text=True,
                            timeout=120)
    assert (result.returncode, result.stdout) == (0, "5\n"), result.stderr


def test_an_unclosed_quote_fails_only_its_own_line(tmp_path):
    path = write(tmp_path / "lines.csv", 'audio,text\na.wav,"hello\nb.wav,fine\nc.wav,"quoted, ok"\nd.wav,last\n')
    rows = read_manifest(path, COLUMNS, REQUIRED)
    assert [(r.number, r.where) for r in rows] == [(1, "line 2"), (2, "line 3"), (3, "line 4"), (4, "line 5")]
    assert rows[0].error.startswith("an unclosed quote") and not rows[0].fields
    assert [r.fields for r in rows[1:]] == [{"audio": "b.wav", "text": "fine"}, {"audio": "c.wav", "text": "quoted, ok"},
                                            {"audio": "d.wav", "text": "last"}]
    assert not any(r.error for r in rows[1:])


def test_an_unclosed_quote_on_the_last_line_fails_alone(tmp_path):
    rows = read_manifest(write(tmp_path / "m.csv", 'audio,text\na.wav,ok\nb.wav,"never closed'), COLUMNS, REQUIRED)
    assert [(r.where, r.error.split(";")[0]) for r in rows] == [("line 2", ""), ("line 3", "an unclosed quote")]


def test_a_run_on_quote_that_takes_more_fields_than_the_header_fails_its_first_line(tmp_path):
    text = 'audio,text\na.wav,"oops\nb.wav,x,"y\nc.wav,z\n'  # the quote would close on line 3, giving 4 fields
    rows = read_manifest(write(tmp_path / "m.csv", text), COLUMNS, REQUIRED)
    assert [r.where for r in rows] == ["line 2", "line 3", "line 4"]
    assert rows[0].error.startswith("an unclosed quote") and rows[1].error.startswith("an unclosed quote")
    assert not rows[2].error and rows[2].fields == {"audio": "c.wav", "text": "z"}


def test_quoted_line_breaks_bom_crlf_and_doubled_quotes(tmp_path):
    text = ('\ufeffAudio , Text,output\r\n'
            'a.wav,"two\r\nlines, with a comma",a.json\r\n'
            '\r\n'
            'b.wav,"she said ""hi""",\r\n'
            '   ,  ,  \r\n'
            'c.wav,"three\nlines\n"\r\n'
            'd.wav\r\n')
    rows = read_manifest(write(tmp_path / "m.csv", text), COLUMNS, REQUIRED)
    assert [(r.number, r.where, r.error) for r in rows] == [(1, "lines 2-3", ""), (2, "line 5", ""),
                                                            (3, "lines 7-9", ""), (4, "line 10", "")]
    assert [r.fields for r in rows] == [{"audio": "a.wav", "text": "two\r\nlines, with a comma", "output": "a.json"},
                                        {"audio": "b.wav", "text": 'she said "hi"', "output": ""},
                                        {"audio": "c.wav", "text": "three\nlines"}, {"audio": "d.wav"}]


def test_too_many_fields_unknown_columns_and_missing_values_fail_their_rows(tmp_path):
    text = "audio,text,outptu\na.wav,hi,there,again\nb.wav,,x.json\n,hello\n"
    rows = read_manifest(write(tmp_path / "m.csv", text), COLUMNS, REQUIRED)
    assert "it has 4 fields but the header names 3" in rows[0].error
    assert "unknown column outptu" in rows[1].error
    assert "missing audio" in rows[2].error


def test_a_nul_in_a_csv_field_fails_that_row_alone(tmp_path):
    rows = read_manifest(write(tmp_path / "m.csv", "audio,text\na.wav,x\nb\0.wav,y\nc.wav,z\n"), COLUMNS, REQUIRED)
    assert [bool(r.error) for r in rows] == [False, True, False]
    assert rows[1].error == "column audio holds a NUL character; remove it" and rows[1].where == "line 3"


def test_json_nul_list_and_object_values_fail_their_rows_alone(tmp_path):
    entries = [{"audio": "a.wav", "text": "fine"}, {"audio": "b\u0000.wav"}, {"audio": "c.wav", "text": ["x", "y"]},
               {"audio": "d.wav", "output": {"path": "d.json"}}, {"audio": "e.wav", "text": 12, "output": None}]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(entries))
    rows = read_manifest(path, COLUMNS, REQUIRED)
    assert [r.error for r in rows] == ["", "column audio holds a NUL character; remove it",
                                       "column text holds a list; give a string",
                                       "column output holds an object; give a string", ""]
    assert [r.where for r in rows] == [f"entry {n}" for n in range(1, 6)]
    assert rows[4].fields == {"audio": "e.wav", "text": "12", "output": ""}


@pytest.mark.parametrize("text,why", [("", "is empty"), ("\r\n  ,\r\n", "is empty"), ("audio\n\n", "has no rows"),
                                      ('"audio\n', "cannot read the header .*line 1: an unclosed quote")])
def test_a_csv_without_a_header_or_rows_stops_the_batch(tmp_path, text, why):
    with pytest.raises(ManifestError, match=why):
        read_manifest(write(tmp_path / "m.csv", text), COLUMNS, REQUIRED)


@pytest.mark.parametrize("row,limit", [
    ('line{i}.wav,"Hello, number {i}",out/{i}.json\n', 1.0),
    ('line{i}.wav,"never closed {i}\n', 2.0),  # every line restarts the reader: still linear
], ids=["quoted commas", "unclosed quotes"])
def test_a_hundred_thousand_rows_read_in_well_under_a_second(tmp_path, row, limit):
    path = write(tmp_path / "big.csv", "audio,text,output\n" + "".join(row.format(i=i) for i in range(100_000)))
    began = time.process_time()  # CPU time: other work on the machine does not count
    rows = read_manifest(path, COLUMNS, REQUIRED)
    took = time.process_time() - began
    assert len(rows) == 100_000 and rows[-1].where == "line 100001"
    assert took < limit, f"{took:.2f} s"


# ------------------------------------------------------------------------------ any manifest csv.writer writes

PIECES = st.sampled_from(['"', '""', ",", "\n", "\r\n", "\r", " ", "\t", "a.wav", "é", "日本", "😀", "\0", "5\" tall"])
FIELD = st.lists(PIECES | st.text(st.characters(codec="utf-8"), max_size=5), max_size=6).map("".join)
ROW = st.lists(FIELD, max_size=len(COLUMNS))  # empty rows too; never more fields than the header


@st.composite
def manifests(draw) -> str:
    rows = draw(st.lists(ROW, max_size=12))
    if rows:  # duplicates
        rows += draw(st.lists(st.sampled_from(rows), max_size=4))
        rows = draw(st.permutations(rows))
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator=draw(st.sampled_from(["\r\n", "\n"])))
    writer.writerows([[]] * draw(st.integers(0, 2)) + [list(COLUMNS)] + rows)
    return draw(st.sampled_from(["", "\ufeff"])) + out.getvalue()


def stdlib_records(text: str) -> list[tuple[str, list[str]]]:
    """The non-blank records as the stdlib reads them, with their line spans, header included."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    found, first = [], 1
    for fields in reader:
        if any(f.strip() for f in fields):
            found.append((f"line {first}" if reader.line_num == first else f"lines {first}-{reader.line_num}",
                          fields))
        first = reader.line_num + 1
    return found


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(manifests())
def test_every_row_csv_writer_writes_is_read_as_the_stdlib_reads_it(tmp_path, text):
    path = write(tmp_path / "m.csv", text)
    expected = stdlib_records(text)[1:]
    assert len(expected) == sum(1 for r in csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
                                if any(f.strip() for f in r)) - 1
    if not expected:
        with pytest.raises(ManifestError, match="has no rows"):
            read_manifest(path, COLUMNS, REQUIRED)
        return
    rows = read_manifest(path, COLUMNS, REQUIRED)
    assert len(rows) == len(expected)
    for number, (row, (where, fields)) in enumerate(zip(rows, expected), start=1):
        assert (row.number, row.where) == (number, where)
        # valid CSV always parses; a row may still fail on its values (no audio, a NUL), by its line
        assert row.fields == {name: value.strip() for name, value in zip(COLUMNS, fields)}
        assert not row.error or row.error.startswith(("missing audio", "column "))
