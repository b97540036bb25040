import io

import numpy as np
import pandas as pd
import pytest

from foster_core.core.data import DataConfig, DataError, leave_one_out, pad_left

from foster_core.core.loaders import build_dataset, load_dataset

from conftest import cyclic_tables

ITEMS = "item_id,text\na,Alpha\nb,Beta\nc,Gamma\nd,Delta\ne,Epsilon\nf,Zeta\n"


def write(folder, name, content):
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_leave_one_out_on_a_hand_made_dataset():
    inter = pd.DataFrame({
        "user_id": ["u1"] * 5 + ["u2"] * 5,
        "item_id": ["a", "b", "c", "d", "e", "e", "d", "c", "b", "a"],
        "timestamp": [1, 2, 3, 4, 5, 9, 8, 7, 6, 5],  # u2 is listed newest first
    })
    items = pd.DataFrame({"item_id": list("abcde"), "text": ["A", "B", "C", "D", "E"]})
    ds = build_dataset("hand", inter, items, DataConfig(min_interactions=5))
    split = leave_one_out(ds)
    names = lambda ids: [ds.item_ids[i] for i in ids]
    assert names(split.train[0]) == ["a", "b", "c"] and names(split.train[1]) == ["a", "b", "c"]
    assert names(split.valid_targets) == ["d", "d"]
    assert names(split.test_targets) == ["e", "e"]
    assert [names(s) for s in split.test_inputs] == [["a", "b", "c", "d"]] * 2


def test_timestamp_ties_keep_file_order():
    inter = pd.DataFrame({"user_id": ["u"] * 5, "item_id": list("cabed"), "timestamp": [5, 1, 1, 1, 0]})
    items = pd.DataFrame({"item_id": list("abcde"), "text": list("ABCDE")})
    ds = build_dataset("ties", inter, items)
    assert [ds.item_ids[i] for i in ds.sequences[0]] == ["d", "a", "b", "e", "c"]


def test_filters_min_interactions_and_keep_most_recent():
    inter, items = cyclic_tables(n_users=3, n_items=12, length=8)
    inter = inter[~((inter.user_id == "u2") & (inter.timestamp >= 3))]  # u2 keeps 3 interactions
    ds = build_dataset("f", inter, items, DataConfig(min_interactions=5, max_seq_len=6, truncate_histories=True))
    assert ds.num_users == 2
    assert all(len(s) == 6 for s in ds.sequences)
    full = inter[inter.user_id == "u0"].item_id.tolist()
    assert [ds.item_ids[i] for i in ds.sequences[0]] == full[-6:]
    assert any("fewer than 5" in n for n in ds.notes) and any("most recent 6" in n for n in ds.notes)


def test_pad_left_right_aligns_most_recent_items():
    out = pad_left([np.array([1, 2, 3]), np.array([4])], 2)
    assert out.tolist() == [[2, 3], [-1, 4]]


def test_generic_folder_and_file_pair_load_the_same(tmp_path):
    inter, items = cyclic_tables(n_users=6)
    inter.to_csv(tmp_path / "interactions.csv", index=False)
    items.to_parquet(tmp_path / "items.parquet")
    a = load_dataset(tmp_path)
    b = load_dataset(tmp_path / "interactions.csv", items=tmp_path / "items.parquet")
    assert a.num_users == b.num_users == 6
    assert [s.tolist() for s in a.sequences] == [s.tolist() for s in b.sequences]


def test_recbole_atomic_files(tmp_path):
    write(tmp_path, "toy.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
          + "".join(f"u1\t{i}\t5\t{t}\n" for t, i in enumerate("abcde")))
    write(tmp_path, "toy.item", "item_id:token\ttitle:token_seq\tbrand:token\tprice:float\n"
          + "".join(f"{i}\tThing {i}\tAcme\t1.0\n" for i in "abcde"))
    ds = load_dataset(tmp_path)
    assert ds.num_users == 1 and ds.num_items == 5
    assert ds.item_texts[0] == "Thing a | Acme"
    assert load_dataset(tmp_path / "toy.inter").num_items == 5


def test_bundled_movielens_loads_with_texts():
    ds = load_dataset("movielens")
    assert ds.num_users == 671
    assert all(t.strip() for t in ds.item_texts)
    assert any(t.startswith("Toy Story (1995)") for t in ds.item_texts)
    assert ds.num_interactions == 100_004  # every rating: whole histories (the longest has 2,391)


@pytest.mark.parametrize("interactions, items, message", [
    ("user_id,item_id\nu,a\n", ITEMS, "missing column(s) 'timestamp'"),
    ("user_id;item_id;timestamp\nu;a;1\n", ITEMS, "separated by something other than commas"),
    ("user_id,item_id,timestamp\n" + "".join(f"u,{i},{t}\n" for t, i in enumerate("abcde")),
     "item_id,text\na,Alpha\nb,\nc,Gamma\nd,Delta\ne,Epsilon\n", "column 'text' is empty or missing for 1 item(s) (e.g. 'b')"),
    ("user_id,item_id,timestamp\nu,a,1\n", "item_id,text\na,Alpha\na,Other\n", "appear with different texts (e.g. 'a')"),
    ("user_id,item_id,timestamp\nu,a,1\nu,b,2\n", ITEMS, "No user has at least 5 interactions"),
    ("user_id,item_id,timestamp\nu,x,1\n", ITEMS, "None of the item ids"),
    ("user_id,item_id,timestamp\nu,a,yesterday-ish\n", ITEMS, "column 'timestamp' must hold numbers or dates"),
    ("", ITEMS, "the file is empty"),
    ("user_id,item_id,timestamp\n", ITEMS, "no interaction rows"),
    (b"user_id,item_id,timestamp\nu,\xff\xfe,1\n", ITEMS, "not UTF-8 text (byte 0xff at position 28)"),
])
def test_loader_errors_name_file_column_and_problem(tmp_path, interactions, items, message):
    write(tmp_path, "interactions.csv", interactions)
    write(tmp_path, "items.csv", items)
    with pytest.raises(DataError) as info:
        load_dataset(tmp_path)
    assert message in str(info.value)


def test_nan_text_in_parquet_is_an_error(tmp_path):
    inter, items = cyclic_tables(n_users=2)
    items.loc[3, "text"] = None
    inter.to_csv(tmp_path / "interactions.csv", index=False)
    items.to_parquet(tmp_path / "items.parquet")
    with pytest.raises(DataError, match=r"items.parquet: column 'text' is empty or missing for 1 item\(s\) \(e.g. 'i3'\)"):
        load_dataset(tmp_path)


def test_interactions_without_item_text_are_dropped_and_counted(tmp_path):
    rows = "".join(f"u,{i},{t}\n" for t, i in enumerate("abcxyde"))
    write(tmp_path, "interactions.csv", "user_id,item_id,timestamp\n" + rows)
    write(tmp_path, "items.csv", ITEMS)
    ds = load_dataset(tmp_path)
    assert ds.num_interactions == 5
    assert any("Dropped 2 interaction(s) whose item has no row in items.csv" in n for n in ds.notes)


def test_utf8_bom_and_float_ids_are_accepted(tmp_path):
    write(tmp_path, "interactions.csv", "\ufeffuser_id,item_id,timestamp\n" + "".join(f"1,{i}.0,{t}\n" for t, i in enumerate(range(5))))
    write(tmp_path, "items.csv", "item_id,text\n" + "".join(f"{i},Item {i}\n" for i in range(5)))
    ds = load_dataset(tmp_path)
    assert ds.num_interactions == 5


def test_unknown_dataset_and_missing_items_file_are_clear(tmp_path):
    with pytest.raises(DataError, match="Unknown dataset 'nope'"):
        load_dataset("nope")
    inter = write(tmp_path, "inter.csv", "user_id,item_id,timestamp\n")
    with pytest.raises(DataError, match="needs its items file"):
        load_dataset(inter)
    with pytest.raises(DataError, match="items file not found"):
        load_dataset(inter, items=tmp_path / "missing.csv")


def test_config_rejects_values_that_break_the_split():
    with pytest.raises(DataError, match="min_interactions must be at least 3"):
        DataConfig(min_interactions=2)


def test_date_timestamps_order_events(tmp_path):
    write(tmp_path, "interactions.csv", "user_id,item_id,timestamp\n" + "".join(
        f"u,{i},2024-01-{d:02d}T10:00:00\n" for i, d in zip("abcde", [5, 1, 3, 2, 4])))
    write(tmp_path, "items.csv", ITEMS)
    ds = load_dataset(tmp_path)
    assert [ds.item_ids[i] for i in ds.sequences[0]] == ["b", "d", "c", "e", "a"]


def test_parquet_datetimes_and_missing_ones(tmp_path):
    inter = pd.DataFrame({"user_id": ["u"] * 5, "item_id": list("abcde"),
                          "timestamp": pd.to_datetime(["2024-01-05", "2024-01-01", "2024-01-03", "2024-01-02", "2024-01-04"])})
    items = pd.read_csv(io.StringIO(ITEMS))
    inter.to_parquet(tmp_path / "interactions.parquet")
    items.to_parquet(tmp_path / "items.parquet")
    ds = load_dataset(tmp_path)
    assert [ds.item_ids[i] for i in ds.sequences[0]] == ["b", "d", "c", "e", "a"]
    inter.loc[2, "timestamp"] = pd.NaT
    inter.to_parquet(tmp_path / "interactions.parquet")
    with pytest.raises(DataError, match="column 'timestamp' is empty in 1 row"):
        load_dataset(tmp_path)


def test_a_file_with_only_a_bom_is_empty(tmp_path):
    write(tmp_path, "interactions.csv", b"\xef\xbb\xbf\n\n")
    write(tmp_path, "items.csv", ITEMS)
    with pytest.raises(DataError, match="interactions.csv: the file is empty"):
        load_dataset(tmp_path)
