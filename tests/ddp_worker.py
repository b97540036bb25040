"""Run by tests/test_distributed.py, in-process as one process and under `torchrun --nproc_per_node 2`:
trains one tiny model and writes its weights and history per process; given a data folder too, then runs
the `train` command on it (what a user types after torchrun), writing its report there."""

import json
import sys
from pathlib import Path

from safetensors.torch import save_file

from foster_core.cli import main as cli_main
from foster_core.core import distributed
from foster_core.core.data import leave_one_out
from foster_core.core.training import TrainConfig, train_on_sequences
from foster_core.testing import SMALL_MODEL, cyclic_dataset, random_text_embeddings


def main(out: Path, data: Path | None = None) -> None:
    distributed.start("cpu")
    # 40 users of 8 items: 40 training rows of equal length, 5 batches of 8, 4 rows a process.
    dataset = cyclic_dataset(n_users=40, n_items=12, length=8)
    split = leave_one_out(dataset)
    result = train_on_sequences(random_text_embeddings(dataset.num_items, 16), split.train, split, SMALL_MODEL,
                                TrainConfig(epochs=4, lr=1e-2, batch_size=8, patience=4, device="cpu"))
    tag = f"rank{distributed.rank()}_of{distributed.world_size()}"
    save_file({k: v.contiguous() for k, v in result.model.state_dict().items()}, str(out / f"{tag}.safetensors"))
    (out / f"{tag}.json").write_text(json.dumps([{"loss": r["loss"], "valid": r["valid"]} for r in result.history]))
    if data is not None:  # the command leaves the process group when it is done
        code = cli_main(["train", "--dataset", str(data), "--out", str(data / "report.json"), "--epochs", "3",
                         "--hidden", "16", "--blocks", "1", "--device", "cpu"])
        if code:
            raise SystemExit(code)
    distributed.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
