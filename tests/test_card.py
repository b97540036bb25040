"""Each distilled set carries a dataset card (Markdown and JSON) that says what it is."""

import json

from foster_core.methods import get_method
from foster_core.runs.evaluator import StudentConfig
from foster_core.runs.experiment import record_full_run
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
    assert {"card.md", "card.json", "item_ids.csv"} <= {f.filename for f in export_files(outcome.run)}
    assert card["positions"] == outcome.results["positions"] and card["full_data"] is None
    # The full-data reference, recorded after the run, rewrites its card with the ratios.
    record_full_run(context, StudentConfig(seeds=(0, 1), epochs=3, eval_every=1), store)
    card = json.loads((outcome.run.path / "card.json").read_text())
    full = store.find_reference(outcome.run.config).results["test"]["ndcg@10"]["mean"]
    assert card["full_data"]["ratio"]["ndcg@10"] == outcome.results["test"]["ndcg@10"]["mean"] / max(full, 1e-12)


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


def _fake_run(store, method, results, **config):
    """A finished run with hand-made results (no training): what the card reads."""
    base = {"budget": None if method == "full" else 20, "dataset": "tiny", "distill": {}, "student": {"seeds": [0, 1]},
            "model": {"hidden": 8}, "expert": {"epochs": 3}}
    run = store.create(method, {**base, **config})
    run.write_results(results)
    run.set_status("finished", "done")
    return run


def _numbers(ndcg, recall, train_seconds, **extra):
    return {"test": {"ndcg@10": {"mean": ndcg, "std": 0.01}, "recall@10": {"mean": recall, "std": 0.02}},
            "per_seed_test": [{}, {}], "student_train_seconds": train_seconds, "student_seconds": train_seconds + 1,
            **extra}


def test_a_card_states_its_ratio_to_full_data_speed_up_size_and_copying(tmp_path):
    from foster_core.runs.card import card_data, card_markdown, refresh_cards, write_card
    store = RunStore(tmp_path / "runs")
    copying = {"summary": "2 of 20 synthetic sequences copy 10 or more consecutive items of one real user"}
    run = _fake_run(store, "foster", _numbers(0.03, 0.05, 2.0, positions=150, position_share=0.025, copying=copying))
    write_card(run)
    card = card_data(run)
    assert card["full_data"] is None and card["positions"] == 150 and card["position_share"] == 0.025
    assert "No matching full-data run" in card_markdown(card)
    # The reference finishes after the run (as in a job): refreshing rewrites the card with its ratios.
    full = _fake_run(store, "full", _numbers(0.04, 0.10, 50.0))
    assert [r.id for r in refresh_cards(store, full)] == [run.id]
    card = json.loads((run.path / "card.json").read_text())
    assert card["full_data"]["ratio"] == {"ndcg@10": 0.03 / 0.04, "recall@10": 0.05 / 0.10}
    assert card["full_data"]["test"]["ndcg@10"] == {"mean": 0.04, "std": 0.01}
    assert card["full_data"]["student_train_speedup"] == 25.0  # 50 s on full data over 2 s
    assert card["copying"] == copying["summary"] and card["preset"] == "custom" and not card["indicative"]
    markdown = (run.path / "card.md").read_text()
    assert "| ndcg@10 | 0.0300 | 0.0400 ± 0.0100 | 0.75 |" in markdown
    assert "| recall@10 | 0.0500 | 0.1000 ± 0.0200 | 0.50 |" in markdown
    assert "- **Against full data:** 0.75 of full-data NDCG@10, 0.50 of full-data Recall@10; student training " \
           "25.0x faster than on full data" in markdown
    assert "- **Size:** 150 positions, 2.5% of the training data's next-item targets" in markdown
    assert "## How close to real users\n\n" + copying["summary"] in markdown
    assert "Indicative" not in markdown
    # Another setup's reference is not this run's: its card keeps saying so.
    other = _fake_run(store, "teacher", _numbers(0.03, 0.05, 2.0), expert={"epochs": 99})
    write_card(other)
    assert json.loads((other.path / "card.json").read_text())["full_data"] is None


def test_a_quick_preset_card_is_flagged_indicative_and_an_older_run_shows_dashes(tmp_path):
    from foster_core.runs.card import card_data, card_markdown
    store = RunStore(tmp_path / "runs")
    card = card_data(_fake_run(store, "foster", _numbers(0.03, 0.05, 2.0), preset="quick"))
    assert card["preset"] == "quick" and card["indicative"] is True and "quick preset" in card["warning"]
    markdown = card_markdown(card)
    assert markdown.splitlines()[2] == f"> **{card['warning']}**" and "- **Preset:** quick" in markdown
    assert "- **Size:** – (not recorded by this run)" in markdown and "How close to real users" not in markdown
    standard = card_data(_fake_run(store, "foster", _numbers(0.03, 0.05, 2.0), preset="standard"))
    assert standard["indicative"] is False and standard["warning"] is None


def test_one_full_data_student_shows_no_spread_in_the_card(tmp_path):
    from foster_core.runs.card import card_markdown, card_data
    store = RunStore(tmp_path / "runs")
    run = _fake_run(store, "foster", _numbers(0.03, 0.05, 2.0))
    _fake_run(store, "full", {**_numbers(0.04, 0.10, 50.0), "per_seed_test": [{}]})  # one full-data student
    markdown = card_markdown(card_data(run))
    assert "| ndcg@10 | 0.0300 | 0.0400 (1 student) | 0.75 |" in markdown and "0.0400 ±" not in markdown


def test_a_card_says_which_candidate_the_holdout_selection_kept(tmp_path):
    from foster_core.methods.events import CandidateSelected
    from foster_core.runs.card import card_data, card_markdown
    store = RunStore(tmp_path / "runs")
    plain = _fake_run(store, "random", _numbers(0.03, 0.05, 2.0))
    assert card_data(plain)["kept"] is None and "**Kept:**" not in card_markdown(card_data(plain))
    own = _fake_run(store, "foster", _numbers(0.03, 0.05, 2.0))
    own.append_history(CandidateSelected(50, 150, 0.0673).to_record())
    assert "- **Kept:** the synthetic data after step 50 of 150 (held-out NDCG@10 0.0673)" in card_markdown(card_data(own))
    teacher = _fake_run(store, "foster", _numbers(0.03, 0.05, 2.0))
    teacher.append_history(CandidateSelected(0, 150, 0.0612, kept="teacher").to_record())
    assert card_data(teacher)["kept"].startswith("teacher's data for the same budget (real training sequences")
    kept_results = _fake_run(store, "foster", _numbers(0.03, 0.05, 2.0, kept="teacher"))
    assert card_data(kept_results)["name"].endswith("distilled by foster (kept teacher's data) to 20 sequences")
