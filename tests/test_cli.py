import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from foster_core.cli import main
from foster_core.runs.run_store import RunStore

from conftest import cyclic_tables


def test_train_command_end_to_end_on_tiny_data(tmp_path, capsys):
    inter, items = cyclic_tables(n_users=20, n_items=10)
    inter.to_csv(tmp_path / "interactions.csv", index=False)
    items.to_csv(tmp_path / "items.csv", index=False)
    out = tmp_path / "report.json"
    code = main(["train", "--dataset", str(tmp_path), "--out", str(out), "--epochs", "3", "--hidden", "16",
                 "--blocks", "1", "--device", "cpu"])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["dataset"]["users"] == 20 and report["device"] == "cpu"
    assert report["epochs_run"] == 3 and 1 <= report["best_epoch"] <= 3
    for row in ("model", "popularity"):
        for split in ("valid", "test"):
            assert set(report[row][split]) == {"ndcg@10", "recall@10", "ndcg@20", "recall@20"}
            assert all(0.0 <= v <= 1.0 for v in report[row][split].values())
    printed = capsys.readouterr().out
    assert "| text-SASRec | test |" in printed and "| popularity | test |" in printed


def test_time_limit_caps_a_training_and_is_kept_in_the_context(tmp_path):
    from foster_core.cli import build_parser, context_without_expert
    inter, items = cyclic_tables(n_users=20, n_items=10)
    inter.to_csv(tmp_path / "interactions.csv", index=False)
    items.to_csv(tmp_path / "items.csv", index=False)
    out = tmp_path / "report.json"
    # Any epoch outlasts 1e-9 s, so the first one ends the training; without the limit all 3 run (above).
    assert main(["train", "--dataset", str(tmp_path), "--out", str(out), "--epochs", "3", "--hidden", "16",
                 "--blocks", "1", "--device", "cpu", "--time-limit", "1e-9"]) == 0
    assert json.loads(out.read_text())["epochs_run"] == 1
    # The distilling commands pass it to the expert's settings, which the full-data students copy.
    args = build_parser().parse_args(["bench", "--dataset", str(tmp_path), "--device", "cpu", "--time-limit", "60"])
    assert context_without_expert(args).expert_cfg.time_limit_s == 60.0
    with pytest.raises(SystemExit):  # refused by the parser, before the data is read
        build_parser().parse_args(["bench", "--time-limit", "-1"])


def test_bad_dataset_is_a_message_and_exit_code_2_not_a_traceback(tmp_path):
    (tmp_path / "interactions.csv").write_text("user,item\nu,a\n")
    (tmp_path / "items.csv").write_text("item_id,text\na,A\n")
    proc = subprocess.run([sys.executable, "-m", "foster_core", "train", "--dataset", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "error: interactions.csv: missing column(s) 'user_id', 'item_id', 'timestamp'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_distill_and_bench_commands_on_tiny_data(tmp_path, capsys, monkeypatch):
    inter, items = cyclic_tables(n_users=16, n_items=8, length=6)
    inter.to_csv(tmp_path / "interactions.csv", index=False)
    items.to_csv(tmp_path / "items.csv", index=False)
    common = ["--dataset", str(tmp_path), "--max-len", "8", "--device", "cpu", "--seeds", "1",
              "--runs-dir", str(tmp_path / "runs")]
    assert main(["distill", "--method", "foster", "--budget", "3", "--steps", "4", *common]) == 0
    printed = capsys.readouterr().out
    assert "test NDCG@10" in printed and "(1 students)" in printed
    # Progress on every long step: the expert's epochs with their holdout NDCG@10, and each student.
    assert "expert: epoch 1, loss" in printed and "NDCG@10" in printed and "left" in printed
    assert "student 1/1: test NDCG@10" in printed
    out = tmp_path / "bench.json"
    assert main(["bench", "--methods", "random", "teacher", "--budgets", "2", "4", "--out", str(out),
                 "--students", "sasrec", "gru4rec", *common]) == 0
    report = json.loads(out.read_text())
    assert [(r["method"], r["budget"]) for r in report["rows"]] == [
        ("full", None), ("random", 2), ("random", 4), ("teacher", 2), ("teacher", 4)]
    assert report["rows"][0]["ratio_ndcg@10"] == 1.0
    # The full-data row is also a run in the store, beside the method runs (the app's Compare page reads it).
    runs = RunStore(tmp_path / "runs").list()
    full_runs = [r for r in runs if r.config["method"] == "full"]
    assert len(full_runs) == 1 and full_runs[0].results["test"] == {
        k: {"mean": report["rows"][0][k]["mean"], "std": report["rows"][0][k]["std"]} for k in full_runs[0].results["test"]}
    table = capsys.readouterr().out
    assert "| teacher | 4 |" in table and "| full | all |" in table
    assert "- teacher n=4" in table and "full-data student 1/1: epoch 1" in table
    # Student time split into training and evaluation, and the training speed-up against full data.
    assert "| student train s | student eval s | train speed-up |" in table and "| 1.0x |" in table
    assert all(r["student_train_seconds"] > 0 and r["student_eval_seconds"] > 0 for r in report["rows"])
    # --students: every architecture on every method's data, against its own full-data training.
    assert [(r["architecture"], r["method"], r["budget"]) for r in report["by_architecture"]][:4] == [
        ("sasrec", "full", None), ("gru4rec", "full", None), ("sasrec", "random", 2), ("gru4rec", "random", 2)]
    gru_full = [r for r in report["by_architecture"] if r["architecture"] == "gru4rec" and r["method"] == "full"][0]
    gru_teacher = [r for r in report["by_architecture"] if r["architecture"] == "gru4rec" and r["budget"] == 4
                   and r["method"] == "teacher"][0]
    assert gru_teacher["ratio_ndcg@10"] == gru_teacher["ndcg@10"]["mean"] / gru_full["ndcg@10"]["mean"]
    assert "| gru4rec | teacher | 4 |" in table and "against the same architecture trained on full data" in table
    assert full_runs[0].results["by_architecture"]["gru4rec"]["test"]["ndcg@10"] == gru_full["ndcg@10"]


def test_budget_larger_than_the_data_is_a_message(tmp_path, capsys):
    inter, items = cyclic_tables(n_users=6, n_items=8, length=6)
    inter.to_csv(tmp_path / "interactions.csv", index=False)
    items.to_csv(tmp_path / "items.csv", index=False)
    code = main(["distill", "--dataset", str(tmp_path), "--budget", "50", "--method", "random", "--device", "cpu",
                 "--runs-dir", str(tmp_path / "runs")])
    assert code == 2
    assert "budget 50 is more than the 6 usable training sequences" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_bad_arguments_and_an_unwritable_out_are_one_line_before_any_work(tmp_path, capsys):
    # The real entry point once (argparse's own errors end the process); the rest through main(), which
    # `python -m foster_core` calls with the same arguments.
    proc = subprocess.run([sys.executable, "-m", "foster_core", "distill", "--budget", "0"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: argument --budget: must be at least 1, got 0 (see: python -m foster_core distill --help)"]
    (tmp_path / "a_file").write_text("")
    under_a_file = tmp_path / "a_file" / "report.json"
    assert main(["train", "--dataset", "movielens", "--out", str(under_a_file)]) == 2  # before loading or training
    captured = capsys.readouterr()
    assert captured.err.strip() == f"error: --out {under_a_file}: {under_a_file.parent} is a file, not a folder"
    assert captured.out == ""
    assert main(["train", "--dataset", "movielens", "--out", str(tmp_path)]) == 2
    assert f"--out {tmp_path} is a folder; give a file name" in capsys.readouterr().err
    assert main(["train", "--dataset", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such file or folder" in capsys.readouterr().err


def test_train_in_a_fresh_folder_writes_results_and_plain_lines_to_a_log(tmp_path):
    """A redirected log reads like the console of `distill`: plain lines, no bars, no escape codes; and
    --out results/x.json creates results/ (a fresh clone has none)."""
    inter, items = cyclic_tables(n_users=20, n_items=10)
    inter.to_csv(tmp_path / "interactions.csv", index=False)
    items.to_csv(tmp_path / "items.csv", index=False)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "foster_core", "train", "--dataset", ".", "--out", "results/x.json",
                           "--epochs", "3", "--hidden", "16", "--blocks", "1", "--device", "cpu"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "results" / "x.json").read_text())["epochs_run"] == 3
    log = proc.stdout + proc.stderr
    assert "\x1b" not in log and "\r" not in log and "%|" not in log  # no cursor codes, no bar
    assert "Encoding item texts: 10/10 texts" in log
    epochs = [line.strip() for line in proc.stdout.splitlines() if line.strip().startswith("training: epoch")]
    assert [line.split(",")[0] for line in epochs] == ["training: epoch 1", "training: epoch 2", "training: epoch 3"]
    # EpochReporter's estimate: the time left if NDCG@10 stopped improving now, not all epochs.
    assert all("s/epoch" in line and "left if NDCG@10 stops improving" in line for line in epochs)


def test_budgets_take_numbers_or_auto_but_not_both(tmp_path, capsys):
    from foster_core.cli import build_parser
    assert build_parser().parse_args(["bench", "--budgets", "auto"]).budgets == ["auto"]
    assert build_parser().parse_args(["bench", "--budgets", "5", "10"]).budgets == [5, 10]
    assert main(["bench", "--budgets", "auto", "10", "--dataset", str(tmp_path / "nowhere")]) == 2
    assert "give either auto or numbers, not both" in capsys.readouterr().err
    proc = subprocess.run([sys.executable, "-m", "foster_core", "bench", "--budgets", "many"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "a whole number of sequences or `auto`, got 'many'" in proc.stderr


def test_label_expert_flag_reaches_the_run_and_the_labeller_is_announced(tmp_path, capsys):
    inter, items = cyclic_tables(n_users=16, n_items=8, length=6)
    inter.to_csv(tmp_path / "interactions.csv", index=False)
    items.to_csv(tmp_path / "items.csv", index=False)
    common = ["--dataset", str(tmp_path), "--max-len", "8", "--device", "cpu", "--seeds", "1",
              "--runs-dir", str(tmp_path / "runs"), "--method", "teacher", "--budget", "3"]
    assert main(["distill", *common]) == 0
    printed = capsys.readouterr().out
    assert "Labeller: the expert refit on the whole training split" in printed and "Labeller ready" in printed
    assert main(["distill", "--label-expert", "holdout", *common]) == 0
    assert "Labeller" not in capsys.readouterr().out  # the expert's own labels: the refit is not asked for
    stored = sorted(r.config["distill"]["label_expert"] for r in RunStore(tmp_path / "runs").list())
    assert stored == ["holdout", "refit"]
