"""Does cost-following training keep the expert's quality? The expert trained with each training variant,
scored on the training split's holdout (every holdout user, full ranking), with its seconds per epoch.

Variants (ids for --variants):
  before     exact softmax over the catalogue, random batches (the training path before cost-following)
  buckets    exact softmax, batches bucketed by length
  sampled_buckets  sampled softmax (2,048 uniform negatives, corrected) and length buckets
  sampled    sampled softmax, random batches: the default on catalogues of more than 8,192 items, forced
             on here whatever the catalogue's size

The acceptance check of the scale issue: `sampled` within 3% of `before` in holdout NDCG@10 on
amazon_scientific. Prints a markdown table and writes JSON; no assertions.

    python -m benchmarks.softmax_check --dataset ../shared/data/amazon_scientific --out docs/results/softmax_check_amazon_scientific.json
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from foster_core.core.atomic import atomic_write_json
from foster_core.core.config import to_dict
from foster_core.core.evaluation import evaluate_model
from foster_core.core.loaders import load_dataset
from foster_core.core.training import TrainConfig, train_on_sequences
from foster_core.runs.experiment import build_context, machine_description
from foster_core.runs.run_store import utc_timestamp

VARIANTS = {
    "before": {"softmax_negatives": 0, "bucket_by_length": False},
    "buckets": {"softmax_negatives": 0, "bucket_by_length": True},
    "sampled_buckets": {"full_softmax_up_to": 0, "bucket_by_length": True},
    "sampled": {"full_softmax_up_to": 0, "bucket_by_length": False},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out")
    args = parser.parse_args()
    dataset = load_dataset(args.dataset)
    context = build_context(dataset)
    holdout = context.holdout
    rows = []
    for variant in args.variants:
        cfg = replace(TrainConfig(seed=args.seed), **VARIANTS[variant])
        result = train_on_sequences(context.text_embeddings, holdout.train, holdout, context.model_cfg, cfg)
        metrics = evaluate_model(result.model, holdout, "valid")
        epochs = len(result.history)
        rows.append({"variant": variant, "config": to_dict(cfg), "holdout": metrics, "best_epoch": result.best_epoch,
                     "epochs": epochs, "train_s_per_epoch": result.train_seconds / epochs,
                     "eval_s_per_pass": result.eval_seconds / max(1, sum("valid" in r for r in result.history)),
                     "seconds": result.seconds})
        print(f"{variant}: holdout NDCG@10 {metrics['ndcg@10']:.4f}, best epoch {result.best_epoch} of {epochs}, "
              f"{rows[-1]['train_s_per_epoch']:.1f} s/epoch", flush=True)
    base = next((r for r in rows if r["variant"] == "before"), rows[0])
    print(f"\n{dataset.name}, expert on the training split's holdout ({len(holdout.train)} users, "
          f"{dataset.num_items} items); {machine_description(torch.device('cpu'))}\n")
    print("| variant | holdout NDCG@10 | vs before | best epoch | train s/epoch | eval s/pass | total s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['variant']} | {r['holdout']['ndcg@10']:.4f} | "
              f"{r['holdout']['ndcg@10'] / base['holdout']['ndcg@10'] - 1:+.1%} | {r['best_epoch']} | "
              f"{r['train_s_per_epoch']:.1f} | {r['eval_s_per_pass']:.1f} | {r['seconds']:.0f} |")
    if args.out:
        atomic_write_json(args.out, {"created": utc_timestamp(), "dataset": dataset.stats(),
                                     "machine": machine_description(torch.device("cpu")), "torch": torch.__version__,
                                     "rows": rows})


if __name__ == "__main__":
    main()
