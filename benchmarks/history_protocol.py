"""Two trained text-SASRecs, each scored on the test split as the data was loaded before and after whole
histories: the last `max_seq_len` items of each user (`truncate_histories`), or every item.

The two loadings share the test targets and the model's input (the last items before each target); they
differ in what evaluation masks (the last 50 items seen, or all of them) and in the catalogue (whole
histories keep the items that only old interactions name). A text model scores any catalogue, so each
checkpoint is scored under both, which separates what training on whole histories gained from what
masking more of the history adds.

    python -m benchmarks.history_protocol --dataset ../shared/data/movielens_1m \
        --checkpoint last50=ckpt_before/epoch_010.safetensors windows=ckpt_after/epoch_003.safetensors
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from foster_core.core.data import DataConfig, leave_one_out
from foster_core.core.evaluation import evaluate_model
from foster_core.core.loaders import load_dataset
from foster_core.core.model import ModelConfig, TextSASRec
from foster_core.core.training import load_checkpoint
from foster_core.runs.experiment import encode_items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--checkpoint", nargs="+", required=True, help="name=path of a trained model's weights")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    loadings = {"last 50 items": DataConfig(truncate_histories=True), "whole histories": DataConfig()}
    report = {}
    for loading, config in loadings.items():
        dataset = load_dataset(args.dataset, config)
        embeddings = encode_items(dataset)
        split = leave_one_out(dataset)
        for spec in args.checkpoint:
            name, path = spec.split("=", 1)
            model = load_checkpoint(TextSASRec(embeddings, ModelConfig()), path).eval()
            test = evaluate_model(model, split, "test")
            report.setdefault(name, {})[loading] = test
            print(f"{name} on {loading} ({dataset.num_items} items): NDCG@10 {test['ndcg@10']:.4f}, "
                  f"Recall@10 {test['recall@10']:.4f}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
