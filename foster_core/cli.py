"""Command line: `python -m foster_core train ...` runs the same library code as the app."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from .atomic import atomic_write_json
from .data import DataConfig, DataError, load_dataset
from .model import ModelConfig
from .text_encoder import EncoderConfig
from .training import TrainConfig


def _add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="movielens",
                        help="'movielens' (bundled), a folder (interactions.csv + items.csv, or x.inter + x.item), "
                             "or an interactions file together with --items")
    parser.add_argument("--items", help="items file (item_id,text) when --dataset is an interactions file")
    parser.add_argument("--min-interactions", type=int, default=DataConfig.min_interactions)
    parser.add_argument("--max-len", type=int, default=DataConfig.max_seq_len)
    parser.add_argument("--encoder", help="a local Hugging Face encoder folder (default: the bundled MiniLM-L6)")
    parser.add_argument("--cache-dir", help="where text embeddings are cached (default: $FOSTER_CACHE_DIR or ~/.cache/foster_studio)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m foster_core", description="FOSTER Studio command line")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train text-SASRec on the full training split and evaluate it")
    _add_dataset_arguments(train)
    train.add_argument("--out", type=Path, help="write the JSON report here")
    train.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    train.add_argument("--patience", type=int, default=TrainConfig.patience)
    train.add_argument("--lr", type=float, default=TrainConfig.lr)
    train.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    train.add_argument("--hidden", type=int, default=ModelConfig.hidden)
    train.add_argument("--blocks", type=int, default=ModelConfig.blocks)
    train.add_argument("--checkpoint-dir", type=Path, help="save a checkpoint per epoch here (an expert trajectory)")
    return parser


def _command_train(args: argparse.Namespace) -> int:
    from .experiment import train_full_data

    dataset = load_dataset(args.dataset, DataConfig(args.min_interactions, args.max_len), items=args.items)
    print(f"Dataset {dataset.name}: {dataset.num_users} users, {dataset.num_items} items, "
          f"{dataset.num_interactions} interactions")
    for note in dataset.notes:
        print(f"  note: {note}")

    bars: dict[str, tqdm] = {}

    def encode_progress(done: int, total: int) -> None:
        bar = bars.setdefault("encode", tqdm(total=total, desc="Encoding item texts", unit="text"))
        bar.update(done - bar.n)

    def on_epoch(record: dict) -> None:
        bar = bars.setdefault("train", tqdm(desc="Training", unit="epoch"))
        valid = record.get("valid", {})
        bar.set_postfix(loss=f"{record['loss']:.3f}", valid_ndcg10=f"{valid.get('ndcg@10', float('nan')):.4f}")
        bar.update(1)

    report = train_full_data(
        dataset,
        ModelConfig(hidden=args.hidden, blocks=args.blocks, max_len=args.max_len),
        TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                    seed=args.seed, device=args.device),
        EncoderConfig(model_path=args.encoder),
        cache_dir=args.cache_dir,
        checkpoint_dir=args.checkpoint_dir,
        encode_progress=encode_progress,
        on_epoch=on_epoch,
    )
    for bar in bars.values():
        bar.close()
    print(format_summary(report))
    if args.out:
        atomic_write_json(args.out, report)
        print(f"Report written to {args.out}")
    return 0


def format_summary(report: dict) -> str:
    lines = [
        f"Device {report['device']} ({report['machine']}); encode {report['seconds']['encode']:.1f}s, "
        f"train {report['seconds']['train']:.1f}s, best epoch {report['best_epoch']} of {report['epochs_run']}",
        "| model | split | NDCG@10 | Recall@10 | NDCG@20 | Recall@20 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in ("popularity", "model"):
        for split in ("valid", "test"):
            m = report[name][split]
            label = "text-SASRec" if name == "model" else name
            lines.append(f"| {label} | {split} | {m['ndcg@10']:.4f} | {m['recall@10']:.4f} | "
                         f"{m['ndcg@20']:.4f} | {m['recall@20']:.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return _command_train(args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1
