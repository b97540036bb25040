"""Each distilled set carries a dataset card (Markdown and JSON) that says what it is."""

import json

from foster_core.methods import get_method
from foster_core.runs.evaluator import StudentConfig
from foster_core.runs.run_store import RunStore, export_files
from foster_core.runs.runner import run_method
from foster_core.testing import tiny_context


def test_a_finished_run_has_a_card_with_its_provenance_and_metrics(tmp_path):
    context = tiny_context(cache_dir=tmp_path / "cache")
    store = RunStore(tmp_path / "runs")
    outcome = run_method(context, "teacher", 3, get_method("teacher").config(label_support=4),
                         StudentConfig(seeds=(0, 1), epochs=3, eval_every=1), store)
    card = json.loads((outcome.run.path / "card.json").read_text())
    assert card["source_dataset"] == context.dataset.name and card["method"] == "teacher" and card["budget"] == 3
    assert card["config"]["distill"]["label_support"] == 4 and card["status"] == "finished"
    assert card["metrics"]["students"] == 2
    assert card["metrics"]["test"]["ndcg@10"] == outcome.results["test"]["ndcg@10"]
    markdown = (outcome.run.path / "card.md").read_text()
    assert markdown.startswith(f"# {context.dataset.name} distilled by teacher to 3 sequences")
    assert f"{outcome.results['test']['ndcg@10']['mean']:.4f}" in markdown and '"label_support": 4' in markdown
    assert {"card.md", "card.json"} <= {f.filename for f in export_files(outcome.run)}


def test_a_stopped_run_has_a_card_that_says_it_was_not_evaluated(tmp_path):
    context = tiny_context(cache_dir=tmp_path / "cache")
    store = RunStore(tmp_path / "runs")
    config = get_method("foster").config(steps=40, log_every=1, select_every=0, subset_size=8, real_batch_size=8)
    outcome = run_method(context, "foster", 3, config, store=store, on_event=lambda e: store.list()[0].request_stop())
    assert outcome.run.status["status"] == "stopped"
    card = json.loads((outcome.run.path / "card.json").read_text())
    assert card["status"] == "stopped" and card["metrics"]["test"] == {}
    assert "Not evaluated" in (outcome.run.path / "card.md").read_text()


def test_a_one_student_card_says_so_instead_of_a_zero_std():
    from foster_core.runs.card import card_markdown
    test = {"ndcg@10": {"mean": 0.0412, "std": 0.0}}
    card = {"name": "x", "source_dataset": "d", "method": "teacher", "budget": 3, "run": "r", "created": "c",
            "status": "finished", "metrics": {"test": test, "students": 1, "protocol": "p"}, "costs": {},
            "files": {}, "config": {}}
    markdown = card_markdown(card)
    assert "| ndcg@10 | 0.0412 | – (1 student) |" in markdown and "0.0000" not in markdown
    card["metrics"]["students"] = 2
    assert "| ndcg@10 | 0.0412 | 0.0000 |" in card_markdown(card)


def test_a_card_lists_every_student_architecture_that_trained_on_the_data(tmp_path):
    context = tiny_context(cache_dir=tmp_path / "cache")
    outcome = run_method(context, "teacher", 3, None,
                         StudentConfig(seeds=(0,), epochs=3, eval_every=1, architectures=("sasrec", "gru4rec")),
                         RunStore(tmp_path / "runs"))
    card = json.loads((outcome.run.path / "card.json").read_text())
    assert card["metrics"]["architecture"] == "sasrec"
    gru = outcome.results["by_architecture"]["gru4rec"]["test"]["ndcg@10"]
    assert card["metrics"]["by_architecture"]["gru4rec"]["ndcg@10"] == gru
    markdown = (outcome.run.path / "card.md").read_text()
    assert f"| gru4rec | {gru['mean']:.4f} ± {gru['std']:.4f} |" in markdown
