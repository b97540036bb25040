"""Hostile and broken inputs: every loader and the upload path end in a Dataset or a DataError, never another
exception, never a partly written file. Hypothesis generates the malformed tables; hand-made cases cover the
named hazards (delimiters, encodings, BOMs, quoted newlines, huge texts, odd ids, size limit, archives)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foster_core.core import loaders as data_module
from foster_core.core.data import DataConfig, DataError, Dataset
from foster_core.core.loaders import load_dataset, max_file_bytes
from foster_core.runs.presets import parse_budgets
from foster_core.core.sources import save_upload

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
EXAMPLES = int(os.environ.get("FOSTER_FUZZ_EXAMPLES", "150"))
TRIED: dict[str, int] = {}  # cases each property saw, for the README's counts

# ----------------------------------------------------------------------------- generated tables

CELL = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "NaN", "nan", "None", "1", "1.0", "2.5", "-3", "1e400", "inf", "007",
                     "2024-01-02", "2024-13-45", "12:00", "\ufeff", '"', '""', "a,b", "a\nb", "a\tb", ";", "|"]),
    st.integers(-10, 10).map(str),
)
HEADER = st.sampled_from(["user_id", "item_id", "timestamp", "text", "user_id:token", "item_id:token",
                          "timestamp:float", "title:token_seq", "", " user_id ", "USER_ID", "extra", "item_id"])
SEPARATOR = st.sampled_from([",", "\t", ";", "|"])
ENCODING = st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252"])


def _quote(cell: str, sep: str) -> str:
    if any(c in cell for c in (sep, '"', "\n", "\r")):
        return '"' + cell.replace('"', '""') + '"'
    return cell


@st.composite
def table_bytes(draw, headers: tuple[str, ...]) -> bytes:
    """A delimited table that is mostly right: the expected header, sometimes changed, then rows of mixed junk."""
    sep = draw(SEPARATOR) if draw(st.booleans()) else ","
    columns = list(headers)
    if draw(st.booleans()):
        columns = draw(st.lists(HEADER, min_size=0, max_size=5))
    n_rows = draw(st.integers(0, 12))
    rows = []
    for _ in range(n_rows):
        width = len(columns) + draw(st.sampled_from([0, 0, 0, -1, 1]))
        rows.append([draw(CELL) for _ in range(max(width, 0))])
    quote = draw(st.booleans())
    lines = [sep.join(_quote(c, sep) if quote else c for c in row) for row in [columns, *rows]]
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines) + draw(st.sampled_from(["", "\n"]))
    raw = text.encode(draw(ENCODING), errors="replace")
    corruption = draw(st.sampled_from(["none", "none", "truncate", "garbage", "nul"]))
    if corruption == "truncate" and raw:
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif corruption == "garbage":
        raw += draw(st.binary(min_size=1, max_size=20))
    elif corruption == "nul":
        raw = raw.replace(b",", b"\x00", 1)
    return raw


def _good_rows() -> tuple[str, str]:
    """Five users with six interactions each: what a fuzzed table is mixed into, so some cases load."""
    inter = "user_id,item_id,timestamp\n" + "".join(f"u{u},i{(u + t) % 7},{t}\n" for u in range(5) for t in range(6))
    items = "item_id,text\n" + "".join(f"i{i},item {i}\n" for i in range(7))
    return inter, items


@st.composite
def mutated_good_table(draw, good: str) -> bytes:
    """A valid table with a few local mutations (a cell replaced, a row dropped or doubled, a line's separator
    changed, an id written as a float): the realistic near-misses, half of which still load."""
    lines = good.rstrip("\n").split("\n")
    for _ in range(draw(st.integers(0, 3))):
        row = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["cell", "drop", "double", "separator", "float", "quote"]))
        cells = lines[row].split(",")
        if kind == "cell":
            cells[draw(st.integers(0, len(cells) - 1))] = _quote(draw(CELL), ",")
            lines[row] = ",".join(cells)
        elif kind == "drop" and len(lines) > 1:
            del lines[row]
        elif kind == "double":
            lines.insert(row, lines[row])
        elif kind == "separator":
            lines[row] = lines[row].replace(",", draw(SEPARATOR))
        elif kind == "float":
            lines[row] = ",".join(c + ".0" if c.isdigit() else c for c in cells)
        elif kind == "quote":
            lines[row] = ",".join(f'"{c}"' for c in cells)
    return ("\n".join(lines) + "\n").encode(draw(st.sampled_from(["utf-8", "utf-8-sig"])))


def _check_outcome(load, folder: Path) -> str:
    try:
        dataset = load()
    except DataError as exc:
        message = str(exc)
        assert message and len(message) < 2000 and "Traceback" not in message
        outcome = "error"
    else:
        assert isinstance(dataset, Dataset) and dataset.num_users >= 1
        assert all(len(s) >= dataset.config.min_interactions for s in dataset.sequences)
        assert all(isinstance(t, str) and t for t in dataset.item_texts)
        outcome = "loaded"
    assert not list(folder.rglob("*.tmp")), "a temporary file was left behind"
    return outcome


FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=False)


@FUZZ
@given(inter=st.one_of(table_bytes(("user_id", "item_id", "timestamp")), mutated_good_table(_good_rows()[0])),
       items=st.one_of(table_bytes(("item_id", "text")), mutated_good_table(_good_rows()[1])),
       suffixes=st.sampled_from([(".csv", ".csv"), (".tsv", ".tsv"), (".csv", ".tsv")]))
def test_generic_pair_of_generated_tables_loads_or_gives_a_data_error(tmp_path_factory, inter, items, suffixes):
    folder = tmp_path_factory.mktemp("pair")
    (folder / f"interactions{suffixes[0]}").write_bytes(inter)
    (folder / f"items{suffixes[1]}").write_bytes(items)
    outcome = _check_outcome(lambda: load_dataset(folder, DataConfig(min_interactions=3)), folder)
    TRIED[f"generic:{outcome}"] = TRIED.get(f"generic:{outcome}", 0) + 1


@FUZZ
@given(inter=table_bytes(("user_id:token", "item_id:token", "timestamp:float")),
       items=table_bytes(("item_id:token", "title:token_seq")))
def test_recbole_pair_of_generated_tables_loads_or_gives_a_data_error(tmp_path_factory, inter, items):
    folder = tmp_path_factory.mktemp("recbole")
    (folder / "x.inter").write_bytes(inter)
    (folder / "x.item").write_bytes(items)
    outcome = _check_outcome(lambda: load_dataset(folder / "x.inter", DataConfig(min_interactions=3)), folder)
    TRIED[f"recbole:{outcome}"] = TRIED.get(f"recbole:{outcome}", 0) + 1


@FUZZ
@given(inter=st.one_of(table_bytes(("user_id", "item_id", "timestamp")), mutated_good_table(_good_rows()[0])),
       items=st.one_of(table_bytes(("item_id", "text")), mutated_good_table(_good_rows()[1])),
       names=st.tuples(st.sampled_from(["a.csv", "b.tsv", "../../x.csv", "c.inter", "d.parquet", "e.zip", "f"]),
                       st.sampled_from(["i.csv", "j.tsv", "/etc/k.csv", "l.item", "m.parquet", "n.gz", ""])))
def test_uploads_of_generated_files_stay_in_the_upload_folder_and_load_or_fail_cleanly(tmp_path_factory, inter,
                                                                                        items, names):
    root = tmp_path_factory.mktemp("uploads")

    def upload_and_load() -> Dataset:
        folder = save_upload(names[0], inter, names[1], items, root=root)
        assert folder.resolve().parent == root.resolve()
        return load_dataset(folder, DataConfig(min_interactions=3))

    outcome = _check_outcome(upload_and_load, root)
    assert all(p.resolve().is_relative_to(root.resolve()) for p in root.rglob("*"))
    TRIED[f"upload:{outcome}"] = TRIED.get(f"upload:{outcome}", 0) + 1


@FUZZ
@given(frame=st.lists(st.tuples(st.one_of(st.integers(-3, 3), st.floats(allow_nan=True), st.text(max_size=4),
                                          st.none()),
                                st.one_of(st.integers(0, 4), st.floats(0, 4), st.text(max_size=3), st.none()),
                                st.one_of(st.integers(), st.floats(), st.datetimes(), st.text(max_size=8),
                                          st.none())), max_size=15),
       texts=st.lists(st.tuples(st.one_of(st.integers(0, 4), st.floats(0, 4), st.text(max_size=3), st.none()),
                                st.one_of(st.text(max_size=6), st.none(), st.floats())), max_size=8))
def test_parquet_pairs_of_mixed_types_load_or_give_a_data_error(tmp_path_factory, frame, texts):
    folder = tmp_path_factory.mktemp("parquet")
    inter = pd.DataFrame(frame, columns=["user_id", "item_id", "timestamp"])
    items = pd.DataFrame(texts, columns=["item_id", "text"])
    try:
        inter.to_parquet(folder / "interactions.parquet")
        items.to_parquet(folder / "items.parquet")
    except Exception:  # pyarrow refuses some mixed columns; write them as text as an exporter would
        inter.astype(str).to_parquet(folder / "interactions.parquet")
        items.astype(str).to_parquet(folder / "items.parquet")
    outcome = _check_outcome(lambda: load_dataset(folder, DataConfig(min_interactions=3)), folder)
    TRIED[f"parquet:{outcome}"] = TRIED.get(f"parquet:{outcome}", 0) + 1


@pytest.fixture(scope="module", autouse=True)
def record_counts():
    """Write how many generated inputs each property tried (test-artifacts/reliability/inputs.json)."""
    yield
    if TRIED:
        folder = ARTIFACTS / "reliability"
        folder.mkdir(parents=True, exist_ok=True)
        total = sum(TRIED.values())
        (folder / "inputs.json").write_text(json.dumps({"generated_inputs": total, "by_outcome": TRIED}, indent=2))


# ----------------------------------------------------------------------------- named hazards, one by one

GOOD_INTERACTIONS, GOOD_ITEMS = _good_rows()


def _pair(folder: Path, interactions: bytes | str, items: bytes | str = GOOD_ITEMS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in (("interactions.csv", interactions), ("items.csv", items)):
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return folder


def _load(folder: Path) -> Dataset:
    return load_dataset(folder, DataConfig(min_interactions=3))


@pytest.mark.parametrize("interactions, items, message", [
    (GOOD_INTERACTIONS.replace(",", ";"), GOOD_ITEMS, "separated by something other than commas"),
    (GOOD_INTERACTIONS.replace(",", "\t"), GOOD_ITEMS, "separated by something other than commas"),
    (GOOD_INTERACTIONS.replace("timestamp", "time"), GOOD_ITEMS, "missing column(s) 'timestamp'"),
    (GOOD_INTERACTIONS, GOOD_ITEMS.replace("item 3", "caf\xe9").encode("latin-1"), "not UTF-8"),
    (GOOD_INTERACTIONS.encode("utf-16"), GOOD_ITEMS, "not UTF-8"),
    (GOOD_INTERACTIONS + 'u1,"i1,3\n', GOOD_ITEMS, "could not parse"),
    (GOOD_INTERACTIONS.replace("u1,", "u\x001,"), GOOD_ITEMS, "NUL bytes"),
    ("," * 5000 + "\n", GOOD_ITEMS, "columns"),
    ("", GOOD_ITEMS, "empty"),
    ("\n\n", GOOD_ITEMS, "empty"),
    ("user_id,item_id,timestamp\n", GOOD_ITEMS, "no interaction rows"),
    (GOOD_INTERACTIONS, GOOD_ITEMS + "i1,another text\n", "different texts"),
    (GOOD_INTERACTIONS.replace(",5\n", ",yesterday\n"), GOOD_ITEMS, "numbers or dates"),
    ("user_id,user_id,item_id,timestamp\n1,1,i1,1\n", GOOD_ITEMS, "user_id"),
])
def test_named_hazards_give_a_clear_data_error(tmp_path, interactions, items, message):
    with pytest.raises(DataError) as caught:
        _load(_pair(tmp_path / "d", interactions, items))
    assert message in str(caught.value)
    assert len(str(caught.value)) < 600


def test_what_loads_loads_right_bom_quoted_newline_extra_columns_duplicates_and_odd_ids(tmp_path):
    quoted = GOOD_ITEMS.replace("item 3", '"item\n3, with ""quotes"""')
    extra = GOOD_INTERACTIONS.replace("timestamp\n", "timestamp,rating\n").replace("\n", ",5\n")
    extra = extra.replace("timestamp,rating,5\n", "timestamp,rating\n")
    cases = {
        "bom": ("\ufeff" + GOOD_INTERACTIONS, "\ufeff" + GOOD_ITEMS),
        "quoted": (GOOD_INTERACTIONS, quoted),
        "extra": (extra, GOOD_ITEMS.replace("text\n", "text,brand\n").replace("\ni", "\ni").replace("\n", "\n")),
        "duplicates": (GOOD_INTERACTIONS + GOOD_INTERACTIONS.split("\n", 1)[1], GOOD_ITEMS + GOOD_ITEMS.split("\n", 1)[1]),
        "crlf": (GOOD_INTERACTIONS.replace("\n", "\r\n"), GOOD_ITEMS.replace("\n", "\r\n")),
    }
    for name, (interactions, items) in cases.items():
        dataset = _load(_pair(tmp_path / name, interactions, items))
        assert dataset.num_users == 5 and dataset.num_items == 7, name
    assert "3, with \"quotes\"" in _load(tmp_path / "quoted").item_texts[3]


def test_float_and_string_ids_match_and_a_one_interaction_user_is_dropped_with_a_note(tmp_path):
    interactions = "user_id,item_id,timestamp\n" + "".join(
        f"{u}.0,{(u + t) % 7}.0,{t}\n" for u in range(5) for t in range(6)) + "99,1,0\n"
    items = "item_id,text\n" + "".join(f"{i},item {i}\n" for i in range(7))
    dataset = _load(_pair(tmp_path / "floats", interactions, items))
    assert dataset.num_users == 5 and dataset.item_ids == [str(i) for i in range(7)]
    assert dataset.user_ids[0] == "0" and any("fewer than 3" in n for n in dataset.notes)


def test_a_huge_text_is_cut_with_a_note_and_huge_or_wide_values_do_not_crash(tmp_path):
    huge = GOOD_ITEMS.replace("item 3", "word " * 400_000)
    dataset = _load(_pair(tmp_path / "huge", GOOD_INTERACTIONS.replace(",5\n", ",1e300\n"), huge))
    assert max(len(t) for t in dataset.item_texts) == data_module.MAX_TEXT_CHARS
    assert any("Cut 1 item text" in n for n in dataset.notes)


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path, monkeypatch):
    folder = _pair(tmp_path / "big", b"", GOOD_ITEMS)
    with open(folder / "interactions.csv", "wb") as handle:
        handle.truncate(2**30)  # a sparse 1 GB file: no disk used, and reading it would take a minute
    read = []
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self) or b"")
    with pytest.raises(DataError, match=r"1,024 MB, over the 200 MB limit"):
        _load(folder)
    assert read == []  # refused from its size alone
    monkeypatch.setenv("FOSTER_MAX_FILE_MB", "0.0001")
    with pytest.raises(DataError, match="over the 0 MB limit"):
        save_upload("a.csv", GOOD_INTERACTIONS.encode(), "b.csv", GOOD_ITEMS.encode(), root=tmp_path / "up")
    assert not (tmp_path / "up").exists()


def test_the_library_limit_and_streamlits_upload_limit_agree():
    import tomllib

    config = tomllib.loads((Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == data_module.DEFAULT_MAX_FILE_MB
    assert max_file_bytes() == data_module.DEFAULT_MAX_FILE_MB * 2**20


@pytest.mark.parametrize("name, content", [
    ("clicks.zip", b"PK\x03\x04" + b"\x00" * 40),
    ("clicks.csv", b"PK\x03\x04" + b"\x00" * 40),  # an archive renamed .csv is found by its first bytes
    ("clicks.csv.gz", b"\x1f\x8b\x08" + b"\x00" * 40),
    ("clicks.csv", b"\x1f\x8b\x08" + b"\x00" * 40),
])
def test_archives_are_not_accepted_and_the_message_says_so(tmp_path, name, content):
    with pytest.raises(DataError, match="archives are not accepted"):
        save_upload(name, content, "items.csv", GOOD_ITEMS.encode(), root=tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / name).write_bytes(content)
    with pytest.raises(DataError, match="archives are not accepted"):
        load_dataset(tmp_path / "folder" / name, items=tmp_path / "folder" / name)


def test_a_killed_upload_write_leaves_no_partial_file(tmp_path, monkeypatch):
    import foster_core.core.atomic as atomic

    def dying_replace(src, dst):
        raise KeyboardInterrupt("killed between writing and renaming")

    monkeypatch.setattr(atomic.os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt):
        save_upload("a.csv", GOOD_INTERACTIONS.encode(), "b.csv", GOOD_ITEMS.encode(), root=tmp_path)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_encoder_cache_entries_are_written_whole_and_bad_ones_are_recomputed(tmp_path, monkeypatch):
    from foster_core.core.text_encoder import TextEncoder

    encoder = TextEncoder(cache_dir=tmp_path)
    calls = []

    def fake_encode(texts, progress):
        calls.append(len(texts))
        return np.ones((len(texts), 4), dtype=np.float32)

    monkeypatch.setattr(encoder, "_encode_uncached", fake_encode)
    texts = ["a", "b", "c"]
    path = encoder.cache_path(texts)
    import foster_core.core.atomic as atomic

    real_replace = atomic.os.replace
    monkeypatch.setattr(atomic.os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        encoder.encode(texts)
    assert not path.exists() and not list(tmp_path.rglob("*.tmp"))  # nothing half-written
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    for damaged in (b"", b"\x93NUMPY garbage", path.read_bytes()[:10] if path.exists() else b"\x93NUM"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(damaged)
        assert encoder.encode(texts).shape == (3, 4)
    assert calls == [3, 3, 3, 3] and encoder.encode(texts).shape == (3, 4) and calls == [3, 3, 3, 3]


def test_budget_sweep_text_is_parsed_or_refused_with_a_message_a_person_understands():
    assert parse_budgets("50, 10;20 10", default=5) == [10, 20, 50]
    assert parse_budgets("  ", default=5) == [5]
    with pytest.raises(ValueError, match=r"whole numbers separated by commas.*'2.5'"):
        parse_budgets("10, 2.5", default=5)
    with pytest.raises(ValueError, match="at least 1 \\(got -5\\)"):
        parse_budgets("0, -5", default=5)
    with pytest.raises(ValueError, match="budget 5000 is more than the 671 usable"):
        parse_budgets("5000", default=5, usable=671)
    with pytest.raises(ValueError, match="at least 1"):
        parse_budgets("", default=0)
