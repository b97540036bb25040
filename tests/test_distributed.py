"""Training on two processes (torchrun, gloo on the CPU) takes the same steps as training on one."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from foster_core.core import distributed
from foster_core.core.data import Split

from conftest import cyclic_tables

ROOT = Path(__file__).resolve().parents[1]


def test_two_processes_take_the_steps_of_one_and_the_command_reports_once(tmp_path):
    from ddp_worker import main as worker
    worker(tmp_path)  # one process, in this one
    data = tmp_path / "data"
    data.mkdir()
    inter, items = cyclic_tables(n_users=30, n_items=10)
    inter.to_csv(data / "interactions.csv", index=False)
    items.to_csv(data / "items.csv", index=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
           "FOSTER_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(Path(__file__).with_name("ddp_worker.py")), str(tmp_path), str(data)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]

    one = load_file(str(tmp_path / "rank0_of1.safetensors"))
    first, second = (load_file(str(tmp_path / f"rank{r}_of2.safetensors")) for r in (0, 1))
    # DDP keeps the processes' weights identical, and with equal halves of each batch their averaged
    # gradient is the one process's gradient: the same weights, up to float summation order (which Adam's
    # normalised steps carry to under 1e-3 after 20 steps here).
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert all(torch.allclose(first[k], one[k], atol=2e-3) for k in one)
    histories = [json.loads((tmp_path / f"rank{r}_of2.json").read_text()) for r in (0, 1)]
    single = json.loads((tmp_path / "rank0_of1.json").read_text())
    # The validation users are split between the processes, and their metrics averaged back: the same
    # numbers as one process validating them all, on every process (so they stop together).
    assert histories[0] == histories[1]
    for two, alone in zip(histories[0], single):
        assert abs(two["loss"] - alone["loss"]) < 1e-4
        assert abs(two["valid"]["ndcg@10"] - alone["valid"]["ndcg@10"]) < 1e-4

    # The train command under torchrun: one report, from the first process, which says how it trained.
    report = json.loads((data / "report.json").read_text())
    assert report["processes"] == 2 and report["epochs_run"] == 3 and "x 2 processes" in report["machine"]
    assert proc.stdout.count("Training on 2 processes") == 1  # the second process prints nothing
    assert proc.stdout.count("| text-SASRec | test |") == 1


def test_one_process_is_not_a_team():
    assert not distributed.active() and distributed.rank() == 0 and distributed.world_size() == 1
    index = torch.arange(5)
    assert torch.equal(distributed.shard(index), index)
    assert distributed.mean_over_processes({"ndcg@10": 0.25}, 3) == {"ndcg@10": 0.25}
    assert distributed.any_process(True) and not distributed.any_process(False)


def test_a_split_shards_its_users_every_nth():
    split = Split([torch.tensor([i]).numpy() for i in range(5)], torch.arange(5).numpy(), torch.arange(5).numpy() + 10)
    first, second = split.shard(0, 2), split.shard(1, 2)
    assert list(first.valid_targets) == [0, 2, 4] and list(second.valid_targets) == [1, 3]
    assert list(second.test_targets) == [11, 13] and split.shard(0, 1) is split
