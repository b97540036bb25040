"""The Explore page's helpers (position table, hover texts, the copying table and map colours) on tiny data, and
the page itself on a run recorded before results held the copying report."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from streamlit.testing.v1 import AppTest

from foster_core.analysis.projection import (COPY_COLUMNS, POSITION_COLUMNS, copy_hover, copy_table, position_table,
                                             position_view, run_copying, sequence_label, sequence_preview,
                                             with_copying, wrap_for_hover)
from foster_core.analysis.strip import position_strip
from foster_core.core.copying import copy_report
from foster_core.core.data import leave_one_out
from foster_core.core.loaders import load_dataset
from foster_core.core.synthetic import SyntheticData
from foster_core.runs.run_store import RunStore
from foster_core.testing import tiny_context

from conftest import make_studio

APP = str(Path(__file__).resolve().parent.parent / "app.py")
MOVIE = "Star Wars: Episode IV - A New Hope (1977) Action|Adventure|Fantasy|Sci-Fi"


def test_hover_texts_wrap_between_words_and_are_never_cut():
    lines = wrap_for_hover(MOVIE, 30).split("<br>")
    assert lines == ["Star Wars: Episode IV - A New", "Hope (1977) Action|Adventure|", "Fantasy|Sci-Fi"]
    assert wrap_for_hover("a " + "x" * 50, 10) == "a<br>" + "x" * 50  # a long word stays whole on its own line
    assert wrap_for_hover("Q&A <b>") == "Q&amp;A &lt;b&gt;"  # item texts are text, not markup
    texts = ["first", MOVIE, "third", "fourth"]
    preview = sequence_preview(texts, [0, 1, 2, 3], first=2, width=40)
    assert preview.split("<br>")[0] == "1. first" and preview.endswith("<br>… and 2 more")
    assert preview.split("<br>")[1:3] == wrap_for_hover(f"2. {MOVIE}", 40).split("<br>")
    label = sequence_label(texts, [1, 0], width=40)
    assert len(label) <= 40 and label.endswith(" …") and MOVIE.startswith(label[:-2])  # cut between words
    strip = position_strip(SyntheticData.from_sequences([np.array([1, 0])], 2), 0, texts, text_width=30)
    assert strip["text"].iloc[0] == wrap_for_hover(MOVIE, 30)


@pytest.fixture
def context(tmp_path):
    return tiny_context(cache_dir=tmp_path)


def test_the_position_table_has_one_row_per_item_with_its_probability_and_leaves_the_items_out_of_their_neighbours(
        context):
    texts = context.dataset.item_texts
    inputs = torch.tensor([[[3, 5], [7, 0], [0, 0]]])
    input_p = torch.tensor([[[0.7, 0.3], [1.0, 0.0], [1.0, 0.0]]])
    labels = torch.tensor([[[4, 6], [8, 0], [0, 0]]])
    label_p = torch.tensor([[[0.6, 0.4], [1.0, 0.0], [1.0, 0.0]]])
    synthetic = SyntheticData(inputs, input_p, labels, label_p, torch.tensor([[True, True, False]]))
    table = position_table(context, synthetic, 0, k=2, neighbours=3)
    assert list(table.columns) == POSITION_COLUMNS
    assert table["position"].tolist() == [0, 0, 0, 1, 1, 1] and table["rank"].tolist() == [1, 2, 3, 1, 2, 3]
    assert table["input item"].tolist() == [texts[3], texts[5], "", texts[7], "", ""]
    assert table["input p"].tolist()[:2] == pytest.approx([0.7, 0.3]) and table["input p"].iloc[3] == 1.0
    assert table["next-item label"].tolist() == [texts[4], texts[6], "", texts[8], "", ""]
    assert table["label p"].tolist()[:2] == pytest.approx([0.6, 0.4]) and table["label p"].iloc[[2, 4, 5]].isna().all()
    # The one-hot position's nearest real items: the three texts nearest its own item's, the item itself left out
    # (it would head the list at similarity 1.00).
    unit = torch.nn.functional.normalize(context.text_embeddings.float(), dim=-1)
    order = [i for i in (unit @ unit[7]).argsort(descending=True).tolist() if i != 7][:3]
    assert table["nearest real item (not itself)"].tolist()[3:] == [texts[i] for i in order]
    assert not {texts[3], texts[5]} & set(table["nearest real item (not itself)"][:3])
    assert (table["similarity"] < 1.0 - 1e-6).all()


def test_the_nearest_real_items_leave_out_every_input_item_of_the_position_not_only_the_shown_ones(context):
    texts = context.dataset.item_texts
    unit = torch.nn.functional.normalize(context.text_embeddings.float(), dim=-1)
    head = 3
    by_closeness = (unit @ unit[head]).argsort(descending=True).tolist()
    neighbour, far = by_closeness[1], by_closeness[-3:]  # the item nearest the head's text; three far items
    support = [head, *far, neighbour]  # the neighbour is the 5th, least probable input item
    probs = torch.tensor([0.96, 0.01, 0.01, 0.01, 0.004])
    synthetic = SyntheticData(torch.tensor([[support]]), (probs / probs.sum()).view(1, 1, 5),
                              torch.tensor([[[4]]]), torch.ones(1, 1, 1), torch.tensor([[True]]))
    expected = torch.nn.functional.normalize((synthetic.input_probs[0, 0].unsqueeze(-1) * unit[support]).sum(0), dim=0)
    ranking = [i for i in (unit @ expected).argsort(descending=True).tolist() if i != head]
    assert ranking[0] == neighbour  # without the whole support left out, the 5th input item would head the list
    table = position_table(context, synthetic, 0, k=3, neighbours=3)
    assert texts[neighbour] not in table["input item"].tolist()  # not among the three shown
    assert table["nearest real item (not itself)"].tolist() == [texts[i] for i in ranking if i not in support][:3]


def test_the_position_view_marks_where_each_position_begins():
    table = pd.DataFrame({"position": [0, 0, 1, 1], "rank": [1, 2, 1, 2], "input item": ["a", "", "b", ""],
                          "input p": [0.5, np.nan, 1.0, np.nan]})
    view = position_view(table)
    html = view.to_html()
    assert "rank" not in view.data.columns and view.data["position"].tolist() == ["0", "", "1", ""]
    rules = re.findall(r"([^{}]+)\{([^}]*)\}", html.split("</style>")[0])

    def rows_with(css: str) -> set[int]:
        return {int(r) for selectors, body in rules if css in body for r in re.findall(r"row(\d+)_col", selectors)}

    assert rows_with("border-top") == {2}  # a rule above position 1's first row
    assert rows_with("background-color") == {2, 3}  # every other position shaded
    assert ">0.50<" in html and ">nan<" not in html


def copying_rows() -> dict:
    real = [np.array([1, 2, 3, 4]), np.array([5, 6, 7])]
    synthetic = SyntheticData.from_sequences([np.array([1, 2, 3, 4, 0]), np.array([8, 9, 0]),
                                              np.array([5, 6, 2, 3, 4, 0])], 6)
    return copy_report(synthetic, real).to_dict()


def test_the_copying_table_and_map_colours_come_from_the_report():
    copying = copying_rows()
    table = copy_table(copying)
    assert list(table.columns) == list(COPY_COLUMNS)
    assert table["synthetic sequence"].tolist() == [0, 1, 2]
    assert table["positions shared"].tolist() == pytest.approx([1.0, 0.0, 0.6])
    assert table["nearest real user"].tolist()[0] == 0 and pd.isna(table["nearest real user"].iloc[1])
    assert table["longest copied run"].tolist() == [4, 0, 3] and table["user of that run"].iloc[2] == 0
    # [8, 9] is too short to count; [5, 6, 2, 3, 4] is no real user's stretch.
    assert table["sequences held"].tolist() == [1, 0, 1] and table["copied whole"].tolist() == [1, 0, 0]
    frame = pd.DataFrame({"source": ["real", "synthetic", "synthetic", "synthetic"], "index": [0, 0, 1, 2],
                          "hover": ["r", "s0", "s1", "s2"]})
    coloured = with_copying(frame, copying)
    assert np.isnan(coloured["share"].iloc[0]) and coloured["share"].tolist()[1:] == pytest.approx([1.0, 0.0, 0.6])
    assert coloured["longest run"].tolist()[1:] == [4, 0, 3] and coloured["hover"].iloc[0] == "r"
    assert coloured["hover"].iloc[1] == "s0" + copy_hover(copying["rows"][0])
    assert "100% of positions</b> in real #0" in coloured["hover"].iloc[1]
    assert "copies no real user" in coloured["hover"].iloc[2]


def test_a_run_without_a_recorded_report_gets_one_computed(context):
    copying = copying_rows()
    synthetic = SyntheticData.from_sequences([context.train[3]], 9)
    assert run_copying({"copying": copying}, synthetic, context.train) is copying
    computed = run_copying({"test": {}}, synthetic, context.train)
    assert computed["rows"][0]["share"] == 1.0 and computed["summary"].startswith("0 of 1 synthetic sequence copies")


def test_explore_shows_how_close_an_older_run_s_sequences_come_to_real_users(tmp_path, monkeypatch):
    root = make_studio(tmp_path, monkeypatch)
    train = leave_one_out(load_dataset(str(root / "tiny"))).train
    store = RunStore(root / "runs")
    run = store.create("random", {"method": "random", "budget": 3, "dataset": str(root / "tiny")})
    SyntheticData.from_sequences([train[i] for i in (0, 5, 9)], 9).save(run.synthetic_path)
    run.write_results({"coverage": 0.5})  # no "copying": results from before it was recorded
    run.set_status("finished")
    app = AppTest.from_file(APP, default_timeout=180)
    app.session_state["explore_selected"] = 1
    app.run()
    app.switch_page("app_pages/explore.py").run()
    assert not app.exception
    headings = [h.value for h in app.subheader]
    assert headings[:2] == ["Synthetic sequence #1, position by position", "How close to real users?"]
    positions = app.table[0].value
    assert {"input item", "input p", "nearest real item (not itself)"} <= set(positions.columns)
    copies = app.dataframe[0].value
    assert copies["positions shared"].tolist() == [1.0, 1.0, 1.0] and list(copies.columns) == list(COPY_COLUMNS)
    assert any("0 of 3 synthetic sequences copy" in m.value for m in app.markdown)
    [umap] = [json.loads(c.proto.spec) for c in app.get("plotly_chart") if "UMAP" in c.proto.spec]
    [dots] = [t for t in umap["data"] if t["name"] == "synthetic"]
    assert dots["marker"]["colorbar"]["tickformat"] == ".0%" and dots["marker"]["cmax"] == 1
