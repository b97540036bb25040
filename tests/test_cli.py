import json
import subprocess
import sys

from foster_core.cli import main

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


def test_bad_dataset_is_a_message_and_exit_code_2_not_a_traceback(tmp_path):
    (tmp_path / "interactions.csv").write_text("user,item\nu,a\n")
    (tmp_path / "items.csv").write_text("item_id,text\na,A\n")
    proc = subprocess.run([sys.executable, "-m", "foster_core", "train", "--dataset", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "error: interactions.csv: missing column(s) 'user_id', 'item_id', 'timestamp'" in proc.stderr
    assert "Traceback" not in proc.stderr
