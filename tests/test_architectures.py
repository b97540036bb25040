"""Student architectures: the registry, each model's own math (pinned by hand-built references), and the
evaluator, bench and Compare tables that train and report several architectures on the same data."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from foster_core.analysis.compare import architecture_table, compare_table
from foster_core.cli import format_speedup
from foster_core.app.tables import architecture_view
from foster_core.core.architectures import DEFAULT_ARCHITECTURE, architecture_names, get_architecture
from foster_core.core.data import PAD_ID, leave_one_out
from foster_core.core.gru4rec import TextGRU4Rec
from foster_core.core.id_sasrec import IdSASRec
from foster_core.core.model import ModelConfig
from foster_core.core.synthetic import SyntheticData
from foster_core.core.training import TrainConfig, train_on_sequences, train_on_synthetic
from foster_core.methods.registry import distill
from foster_core.runs.evaluator import StudentConfig, architecture_rows, evaluate_full, evaluate_synthetic
from foster_core.runs.run_store import RunStore, same_setup
from foster_core.testing import TINY_MODEL, cyclic_dataset, random_text_embeddings, tiny_context

CFG = ModelConfig(hidden=8, blocks=1, heads=1, dropout=0.0, max_len=6)


def test_the_registry_names_four_architectures_the_expert_s_first():
    assert architecture_names()[:4] == ["sasrec", "sasrec-large", "gru4rec", "id-sasrec"]
    assert DEFAULT_ARCHITECTURE == "sasrec"
    base = ModelConfig(max_len=37)
    large = get_architecture("sasrec-large").model_cfg(base)
    assert (large.hidden, large.blocks, large.max_len) == (128, 4, 37)  # its own size, the expert's window
    assert get_architecture("sasrec").model_cfg(base) == base
    assert isinstance(get_architecture("gru4rec").build(random_text_embeddings(5, 4), CFG), TextGRU4Rec)
    with pytest.raises(ValueError, match="unknown student architecture 'bert4rec'; choose from sasrec"):
        get_architecture("bert4rec")
    with pytest.raises(ValueError, match="unknown student architecture"):
        StudentConfig(architectures=("sasrec", "nope"))
    with pytest.raises(ValueError, match="at least one"):
        StudentConfig(architectures=())


def test_gru4rec_ignores_left_padding_and_matches_a_hand_run_gru_cell():
    torch.manual_seed(0)
    model = TextGRU4Rec(random_text_embeddings(9, 4), CFG).eval()
    short = torch.tensor([[PAD_ID, PAD_ID, PAD_ID, 3, 1, 4]])
    unpadded = torch.tensor([[3, 1, 4]])
    with torch.no_grad():
        padded_out, plain_out = model(short), model(unpadded)
        # A GRU cell stepped by hand over the three real items, from a zero state.
        cell = torch.nn.GRUCell(8, 8)
        cell.weight_ih.copy_(model.gru.weight_ih_l0), cell.weight_hh.copy_(model.gru.weight_hh_l0)
        cell.bias_ih.copy_(model.gru.bias_ih_l0), cell.bias_hh.copy_(model.gru.bias_hh_l0)
        table, state, states = model.item_embeddings(), torch.zeros(1, 8), []
        for item in (3, 1, 4):
            state = cell(table[item].unsqueeze(0), state)
            states.append(model.final_norm(state))
    assert torch.allclose(padded_out[0, 3:], torch.cat(states), atol=1e-5)
    assert torch.allclose(padded_out[0, 3:], plain_out[0], atol=1e-5)
    assert torch.equal(padded_out[0, :3], torch.zeros(3, 8))  # padding positions hold nothing


def test_id_sasrec_learns_from_ids_and_never_reads_the_texts():
    torch.manual_seed(0)
    model = IdSASRec(random_text_embeddings(7, 4, seed=1), CFG).eval()
    seqs = torch.tensor([[PAD_ID, 2, 5, 1]])
    before = model(seqs)
    model.replace_text_embeddings(random_text_embeddings(7, 4, seed=2))  # other texts: nothing changes
    assert torch.equal(model(seqs), before)
    assert model.num_items == 7 and tuple(model.item_embeddings().shape) == (7, 8)
    assert torch.allclose(model.item_embeddings(torch.tensor([5, 2])), model.item_embeddings()[[5, 2]])
    (model(seqs)[0, -1] @ torch.randn(8)).backward()  # (a plain sum of a LayerNorm output has no gradient)
    touched = model.adapter.embedding.weight.grad.abs().sum(1) > 0
    assert touched.tolist() == [False, True, True, False, False, True, False]  # only the input ids' rows


@pytest.mark.parametrize("arch", ["sasrec", "sasrec-large", "gru4rec", "id-sasrec"])
def test_every_architecture_takes_one_hot_soft_inputs_as_its_hard_inputs(arch):
    torch.manual_seed(0)
    model = get_architecture(arch).build(random_text_embeddings(6, 4), CFG).eval()
    seqs = torch.tensor([[PAD_ID, 0, 3, 5], [1, 2, 2, 4]])
    probs = torch.nn.functional.one_hot(seqs.clamp(min=0), 6).float()
    with torch.no_grad():
        hard = model(seqs)
        soft = model.forward_soft(probs, model.item_embeddings(), seqs != PAD_ID)
    assert torch.allclose(hard, soft, atol=1e-5)


@pytest.mark.parametrize("arch", ["sasrec", "sasrec-large", "gru4rec", "id-sasrec"])
def test_every_architecture_s_last_hidden_state_is_its_forward_pass_s_last_column(arch):
    # Evaluation scores from `last_hidden`; SASRec's runs its last block for the last position alone.
    torch.manual_seed(0)
    model = get_architecture(arch).build(random_text_embeddings(9, 4), replace(CFG, blocks=2)).eval()
    seqs = torch.tensor([[PAD_ID, PAD_ID, PAD_ID, 0, 3, 5], [1, 2, 2, 4, 8, 7], [PAD_ID] * 5 + [6]])
    with torch.no_grad():
        table = model.item_embeddings()
        expected = model(seqs, item_table=table)[:, -1]
        assert torch.allclose(model.last_hidden(seqs, item_table=table), expected, atol=1e-6)
        assert torch.allclose(model.last_hidden(seqs), expected, atol=1e-6)
    assert expected.abs().sum(-1).min() > 0  # a real state for every row, the one-item row included


@pytest.mark.parametrize("arch", ["gru4rec", "id-sasrec", "sasrec-large"])
def test_every_architecture_learns_the_cycle_from_real_and_from_synthetic_data(arch):
    dataset = cyclic_dataset()
    split, text = leave_one_out(dataset), random_text_embeddings(dataset.num_items, 16)
    cfg = TrainConfig(epochs=12, lr=1e-2, batch_size=8, patience=12, device="cpu")
    real = train_on_sequences(text, split.train, split, TINY_MODEL, cfg, arch=arch)
    assert type(real.model) is get_architecture(arch).model_class
    assert real.best_valid["ndcg@10"] > 0.5  # 12 items: a model that learnt nothing scores about 0.2
    synthetic = SyntheticData.from_sequences(split.train[:12], TINY_MODEL.max_len)
    student = train_on_synthetic(text, synthetic, split, TINY_MODEL,
                                 TrainConfig(epochs=40, lr=1e-2, batch_size=12, patience=40, eval_every=5,
                                             device="cpu"), arch=arch)
    assert student.model.cfg == get_architecture(arch).model_cfg(TINY_MODEL)
    assert student.best_valid["ndcg@10"] > 0.4


def test_the_evaluator_trains_every_architecture_and_keeps_the_first_as_the_headline(tmp_path):
    context = tiny_context(cache_dir=tmp_path)
    synthetic = distill(context, "teacher", 6)
    student = StudentConfig(seeds=(0,), epochs=10, eval_every=5, patience=10, device="cpu",
                            architectures=("gru4rec", "sasrec"))
    results = evaluate_synthetic(context, synthetic, student)
    assert results["architecture"] == "gru4rec" and list(results["by_architecture"]) == ["gru4rec", "sasrec"]
    assert results["test"] == results["by_architecture"]["gru4rec"]["test"]
    assert results["test"] != results["by_architecture"]["sasrec"]["test"]
    one = evaluate_synthetic(context, synthetic, StudentConfig(seeds=(0,), epochs=10, eval_every=5, patience=10,
                                                               device="cpu"))
    assert "by_architecture" not in one and one["architecture"] == "sasrec"
    assert one["test"] == results["by_architecture"]["sasrec"]["test"]  # the same student, trained alone
    full = evaluate_full(context, student)
    # The default architecture's cache keeps its old name; the others have their own.
    names = sorted(p.name for p in context.expert_folder().glob("full_eval*.json"))
    assert len(names) == 2 and names[1] == "full_eval_seeds_0.json"
    assert names[0].startswith("full_eval_gru4rec_") and names[0].endswith("_seeds_0.json")
    assert json.loads((context.expert_folder() / "full_eval_seeds_0.json").read_text())["test"] == \
        full["by_architecture"]["sasrec"]["test"]


def test_architecture_rows_divide_by_the_same_architecture_s_full_data_numbers():
    def numbers(ndcg, seconds):
        return {"test": {"ndcg@10": {"mean": ndcg, "std": 0.01}, "recall@10": {"mean": 2 * ndcg, "std": 0.0}},
                "per_seed_test": [{}, {}], "student_train_seconds": seconds}
    full = {"by_architecture": {"sasrec": numbers(0.08, 600.0), "gru4rec": numbers(0.05, 300.0)}}
    run = {"by_architecture": {"sasrec": numbers(0.06, 12.0), "gru4rec": numbers(0.04, 6.0),
                               "id-sasrec": numbers(0.01, 3.0)}}
    rows = {r["architecture"]: r for r in architecture_rows("teacher", 20, run, full)}
    assert rows["sasrec"]["ratio_ndcg@10"] == pytest.approx(0.75) and rows["sasrec"]["train_speedup"] == 50.0
    assert rows["gru4rec"]["ratio_ndcg@10"] == pytest.approx(0.8) and rows["gru4rec"]["train_speedup"] == 50.0
    assert rows["id-sasrec"]["ratio_ndcg@10"] is None and rows["id-sasrec"]["train_speedup"] is None
    assert rows["sasrec"]["seeds"] == 2
    # Results from before architectures count as the default architecture's.
    old = architecture_rows("teacher", 20, numbers(0.04, 8.0), full)
    assert [(r["architecture"], r["ratio_ndcg@10"]) for r in old] == [("sasrec", pytest.approx(0.5))]
    assert architecture_rows("full", None, full, full)[0]["train_speedup"] is None


def test_a_reference_for_several_architectures_serves_a_run_with_any_of_them():
    config = {"dataset": "d", "model": {"hidden": 64}, "expert": {}, "student": {"seeds": [0], "architectures": ["sasrec"]}}
    other = {**config, "student": {"seeds": [0], "architectures": ["sasrec", "gru4rec"]}}
    assert same_setup(config, other)
    assert not same_setup(config, {**config, "student": {"seeds": [0, 1], "architectures": ["sasrec"]}})


def test_a_run_s_headline_ratio_is_to_its_own_architecture_whatever_the_reference_s_headline(tmp_path):
    store = RunStore(tmp_path / "runs")
    setup = {"dataset": "d", "model": {}, "expert": {}, "student": {"seeds": [0]}}

    def numbers(ndcg, seconds):
        return {"test": {"ndcg@10": {"mean": ndcg, "std": 0.0}}, "per_seed_test": [{}],
                "student_train_seconds": seconds}
    teacher = store.create("teacher", {**setup, "budget": 5})  # older, of the default architecture alone
    teacher.write_results(numbers(0.06, 10.0))
    teacher.set_status("finished", "done")
    full = store.create("full", setup)  # newer, gru4rec first
    full.write_results({**numbers(0.02, 100.0), "architecture": "gru4rec",
                        "by_architecture": {"gru4rec": numbers(0.02, 100.0), "sasrec": numbers(0.08, 400.0)}})
    full.set_status("finished", "done")
    row = compare_table(store).set_index("run").loc[teacher.id]
    assert row["ndcg@10 / full"] == pytest.approx(0.75)  # 0.06 / sasrec's 0.08, not / gru4rec's 0.02
    assert row["full-data train s"] == 400.0 and row["speed-up vs full"] == pytest.approx(40.0)


def test_compare_shows_each_architecture_against_its_own_full_data_run(tmp_path):
    store = RunStore(tmp_path / "runs")
    setup = {"dataset": "d", "model": {}, "expert": {}, "student": {"seeds": [0, 1]}}

    def finished(method, budget, by_arch):
        run = store.create(method, {**setup, "budget": budget})
        head = next(iter(by_arch.values()))
        run.write_results({**head, "by_architecture": by_arch})
        run.set_status("finished", "done")

    def numbers(ndcg, seconds):
        return {"test": {"ndcg@10": {"mean": ndcg, "std": 0.002}, "recall@10": {"mean": ndcg, "std": 0.0}},
                "per_seed_test": [{}, {}], "student_train_seconds": seconds}
    finished("full", None, {"sasrec": numbers(0.08, 400.0), "gru4rec": numbers(0.06, 200.0)})
    finished("foster", 20, {"sasrec": numbers(0.064, 20.0), "gru4rec": numbers(0.03, 10.0)})
    table = architecture_table(store)
    foster = table[table["method"] == "foster"].set_index("architecture")
    assert foster.loc["gru4rec", "ratio_ndcg@10"] == pytest.approx(0.5)
    assert foster.loc["sasrec", "train_speedup"] == pytest.approx(20.0)
    view = architecture_view(table)
    assert list(view.columns[:5]) == ["student", "method", "budget", "ndcg@10 / own full", "ndcg@10 (mean ± std)"]
    row = view[(view["student"] == "gru4rec") & (view["method"] == "foster")].iloc[0]
    assert (row["ndcg@10 / own full"], row["ndcg@10 (mean ± std)"], row["speed-up vs own full"]) == \
        ("0.50×", "0.0300 ± 0.0020", "20.0×")
    assert view[view["method"] == "full"]["budget"].tolist() == ["all", "all"]
    # The registry's order, the default student first, each one's full-data row on top.
    assert list(zip(view["student"], view["method"])) == [("sasrec", "full"), ("sasrec", "foster"),
                                                          ("gru4rec", "full"), ("gru4rec", "foster")]
    assert np.isclose(table[table["method"] == "full"]["ratio_ndcg@10"], 1.0).all()


def test_speed_ups_below_ten_keep_a_decimal_so_a_slower_student_does_not_read_0x():
    assert (format_speedup(51.4), format_speedup(6.34), format_speedup(0.4), format_speedup(None)) == \
        ("51x", "6.3x", "0.4x", "")


def test_the_compare_page_shows_other_recommenders_only_for_runs_that_trained_them(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from conftest import make_studio

    root = make_studio(tmp_path, monkeypatch)
    store = RunStore(root / "runs")
    setup = {"dataset": "cyclic", "model": {}, "expert": {}, "student": {"seeds": [0]}}

    def numbers(ndcg):
        return {"test": {m: {"mean": ndcg, "std": 0.0} for m in ("ndcg@10", "recall@10", "ndcg@20", "recall@20")},
                "per_seed_test": [{}], "student_train_seconds": 10.0, "coverage": 0.5, "popular_share": 0.5}

    for method, budget, archs in (("full", None, {"sasrec": numbers(0.5), "id-sasrec": numbers(0.4)}),
                                  ("teacher", 5, {"sasrec": numbers(0.25), "id-sasrec": numbers(0.1)})):
        run = store.create(method, {**setup, "budget": budget})
        run.write_results({**archs["sasrec"], "by_architecture": archs})
        run.set_status("finished", "done")
    app = AppTest.from_file("../app.py", default_timeout=120)
    app.run()
    app.switch_page("app_pages/compare.py").run()
    assert not app.exception
    [view] = [d.value for d in app.dataframe if "student" in d.value.columns]
    row = view[(view["student"] == "id-sasrec") & (view["method"] == "teacher")].iloc[0]
    assert row["ndcg@10 / own full"] == "0.25×"  # 0.1 against id-sasrec's own 0.4, not sasrec's 0.5
    assert any(h.value == "Other recommenders on the same data" for h in app.subheader)


def test_full_data_students_are_cached_per_seed_so_more_seeds_train_only_the_new_ones(tmp_path, monkeypatch):
    import foster_core.runs.evaluator as evaluator

    context = tiny_context(cache_dir=tmp_path)
    trained = []
    original = evaluator.train_on_sequences
    monkeypatch.setattr(evaluator, "train_on_sequences",
                        lambda *a, **k: trained.append(k["arch"]) or original(*a, **k))
    student = dict(epochs=3, eval_every=1, device="cpu", architectures=("gru4rec",))
    one = evaluate_full(context, StudentConfig(seeds=(0,), **student))
    assert trained == ["gru4rec"]
    two = evaluate_full(context, StudentConfig(seeds=(0, 1), **student))
    assert trained == ["gru4rec", "gru4rec"]  # only seed 1 trained; seed 0 read back
    assert two["per_seed_test"][0] == one["per_seed_test"][0]
    [seed_1] = context.expert_folder().glob("full_eval_gru4rec_*_seeds_1.json")
    seconds = [one["student_train_seconds"], json.loads(seed_1.read_text())["student_train_seconds"]]
    assert two["student_train_seconds"] == pytest.approx(np.mean(seconds))
    evaluate_full(context, StudentConfig(seeds=(1, 0), **student))
    assert len(trained) == 2  # every seed on file: nothing trains
