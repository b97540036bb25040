"""A real outside consumer of the exports: RecBole 1.2.1 loads `synthetic.inter` with its own dataset code
and trains its SASRec for one epoch on it.

RecBole runs in a subprocess of its own: its Config sets numpy aliases (np.float, np.int, ...) on the numpy
module for the whole process, and those must not leak into the rest of the suite, where they would hide a
use of an alias that numpy 2 removed. RecBole 1.2.1 also reads np.float_, np.complex_ and np.unicode_,
which numpy 2 removed; the subprocess restores just those three (as numpy 1 had them) before importing it.
"""

import importlib.util
import json
import shutil
import subprocess
import sys

import pytest

from foster_core.core.export import hard_interactions, write_exports
from foster_core.methods.registry import distill
from foster_core.testing import tiny_context

if importlib.util.find_spec("recbole") is None:
    pytest.skip("RecBole is not installed (requirements-dev.txt installs recbole==1.2.1)", allow_module_level=True)

CONSUMER = r"""
import json, sys
import numpy as np
for old, new in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
    if not hasattr(np, old):
        setattr(np, old, new)
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.model.sequential_recommender import SASRec
from recbole.trainer import Trainer
from recbole.utils import init_seed

data_path, checkpoints = sys.argv[1], sys.argv[2]
config = Config(model="SASRec", dataset="synthetic", config_dict={
    "data_path": data_path, "checkpoint_dir": checkpoints, "epochs": 1, "train_neg_sample_args": None,
    "loss_type": "CE", "MAX_ITEM_LIST_LENGTH": 10, "hidden_size": 16, "inner_size": 32, "n_layers": 1,
    "n_heads": 1, "train_batch_size": 16, "eval_batch_size": 16, "device": "cpu", "use_gpu": False,
    "show_progress": False, "state": "ERROR", "save_dataset": False, "save_dataloaders": False,
    "load_col": {"inter": ["user_id", "item_id", "timestamp"]}, "seed": 0, "reproducibility": True,
    "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"},
})
init_seed(config["seed"], config["reproducibility"])
dataset = create_dataset(config)
interactions = dataset.inter_num  # as read from the file (data_preparation then makes one row per target)
train, valid, test = data_preparation(config, dataset)
model = SASRec(config, train.dataset)
trainer = Trainer(config, model)
loss = trainer._train_epoch(train, epoch_idx=0, show_progress=False)
valid_result = trainer.evaluate(valid, load_best_model=False, show_progress=False)
print("RESULT " + json.dumps({
    "users": dataset.user_num, "items": dataset.item_num, "interactions": interactions,
    "item_tokens": sorted(dataset.field2id_token["item_id"].tolist()[1:]), "loss": float(loss),
    "valid": {k: float(v) for k, v in valid_result.items()},
}))
"""


def test_recbole_loads_the_synthetic_inter_file_and_trains_sasrec_one_epoch_on_it(tmp_path):
    context = tiny_context(cache_dir=tmp_path / "cache")
    synthetic = distill(context, "random", 8)  # the export's format is the same for every method
    paths = write_exports(tmp_path / "run", synthetic, context.dataset)
    folder = tmp_path / "recbole" / "synthetic"  # RecBole reads <data_path>/<dataset>/<dataset>.inter
    folder.mkdir(parents=True)
    shutil.copy(paths["recbole_inter"], folder / "synthetic.inter")

    proc = subprocess.run([sys.executable, "-c", CONSUMER, str(tmp_path / "recbole"), str(tmp_path / "saved")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    hard = hard_interactions(synthetic, context.dataset)
    # RecBole counts a padding token among the users and the items.
    assert result["users"] == 8 + 1 and result["interactions"] == len(hard)
    assert result["item_tokens"] == sorted(set(hard["item_id"].astype(str)))
    assert result["items"] == hard["item_id"].nunique() + 1
    assert result["loss"] > 0 and all(0.0 <= v <= 1.0 for v in result["valid"].values())
    assert {"recall@10", "ndcg@10"} <= set(result["valid"])
