"""Command line: `python -m foster_core train ...` runs the same library code as the app."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .cli_progress import EventLines, interactive, method_progress, progress_display, say
# The tables are importable from here as they always were (benchmarks and tests use them).
from .cli_tables import format_architecture_table, format_bench_table, format_speedup, format_summary  # noqa: F401
from .core import distributed
from .core.architectures import DEFAULT_ARCHITECTURE, architecture_names, get_architecture
from .core.atomic import atomic_write_json
from .core.data import DataConfig, DataError
from .core.loaders import load_dataset
from .core.model import ModelConfig
from .core.text_encoder import EncoderConfig
from .core.train_state import RESUME_FILE
from .core.training import TrainConfig
from .methods import all_methods, check_budget, get_method, method_names
from .methods.coresets import SELECTIONS
from .methods.expert import DistillContext
from .methods.registry import needs_expert, needs_labeller
from .methods.foster import FosterConfig
from .methods.sparse import PACKING
from .methods.teacher import LABEL_EXPERTS, TeacherConfig
from .runs.evaluator import EpochReporter, StudentConfig
from .runs.experiment import FULL, build_context, run_bench, train_full_data
from .runs.ladder import LADDER_WORD, STOP_POSITION_SHARE, STOP_RATIO, ladder_budgets, ladder_stop
from .runs.resume import resume_in_foreground
from .runs.run_store import RunNotFound, RunStore
from .runs.runner import run_method


COMMAND = "foster-studio"  # the console command pyproject.toml installs
# Set before transformers is first imported (encoding does it): its weight-loading bar goes to a log too.
HF_BARS_OFF = "HF_HUB_DISABLE_PROGRESS_BARS"


def _finish(table: str, report: dict, out: Path | None) -> int:
    print(table)
    if out:
        atomic_write_json(out, report)
        print(f"Results written to {out}")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _budget(text: str) -> int | str:
    if text == LADDER_WORD:
        return LADDER_WORD
    try:
        return _positive_int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number of sequences or `{LADDER_WORD}`, got {text!r}") from None


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (no limit) or positive, got {text}")
    return value


def _add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="movielens",
                        help="'movielens' (bundled), a folder (interactions.csv + items.csv, or x.inter + x.item), "
                             "or an interactions file together with --items")
    parser.add_argument("--items", help="items file (item_id,text) when --dataset is an interactions file")
    parser.add_argument("--min-interactions", type=_positive_int, default=DataConfig.min_interactions)
    parser.add_argument("--max-len", type=_positive_int, default=DataConfig.max_seq_len)
    parser.add_argument("--encoder", help="a local Hugging Face encoder folder (default: the bundled MiniLM-L6)")
    parser.add_argument("--cache-dir", help="where text embeddings are cached (default: $FOSTER_CACHE_DIR or ~/.cache/foster_studio)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--precision", default=TrainConfig.precision, choices=["fp32", "bf16"],
                        help="bf16 autocast for training (CUDA only)")
    parser.add_argument("--time-limit", type=_seconds, default=TrainConfig.time_limit_s, metavar="SECONDS",
                        help="stop the expert and each full-data training after the first epoch past this many "
                             "seconds of its training loop (validation passes included), keeping the best epoch "
                             "so far (default 0: no limit); for data too large to train to convergence on this machine")


class _OneLineErrors(argparse.ArgumentParser):
    """Bad arguments end like every other bad input: one line, exit code 2 (no usage dump)."""

    def error(self, message: str) -> None:
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


def _check_out(path: Path | None) -> None:
    """Make sure an --out can be written before the work, not after it: its folder is created (results/ in a
    fresh clone), and a path that cannot be a file is refused."""
    if path is None:
        return
    if path.is_dir():
        raise ValueError(f"--out {path} is a folder; give a file name, e.g. {path / 'results.json'}")
    folder = path.parent  # Path("x.json").parent is Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ValueError(f"--out {path}: {folder} is a file, not a folder") from None
    except OSError as exc:
        raise ValueError(f"--out {path}: cannot create the folder {folder} ({exc.strerror})") from None
    if not os.access(folder, os.W_OK):
        raise ValueError(f"--out {path}: the folder {folder} is not writable")


def build_parser() -> argparse.ArgumentParser:
    # The installed command names itself; `python -m foster_core` runs the same main.
    prog = COMMAND if Path(sys.argv[0]).name == COMMAND else "python -m foster_core"
    parser = _OneLineErrors(prog=prog, description="FOSTER Studio command line")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train text-SASRec on the full training split and evaluate it")
    _add_dataset_arguments(train)
    train.add_argument("--out", type=Path, help="write the JSON report here (its folder is created)")
    train.add_argument("--epochs", type=_positive_int, default=TrainConfig.epochs)
    train.add_argument("--patience", type=_positive_int, default=TrainConfig.patience)
    train.add_argument("--lr", type=float, default=TrainConfig.lr)
    train.add_argument("--batch-size", type=_positive_int, default=TrainConfig.batch_size)
    train.add_argument("--hidden", type=_positive_int, default=ModelConfig.hidden)
    train.add_argument("--blocks", type=_positive_int, default=ModelConfig.blocks)
    train.add_argument("--checkpoint-dir", type=Path, help="save a checkpoint per epoch here (an expert trajectory)")
    distill = commands.add_parser("distill", help="distil a dataset into `budget` synthetic sequences with one method")
    _add_dataset_arguments(distill)
    distill.add_argument("--method", default="foster", choices=method_names(),
                         help="; ".join(f"{m.name}: {m.help}" for m in all_methods()))
    distill.add_argument("--budget", type=_positive_int, default=20, help="number of synthetic sequences")
    _add_distill_arguments(distill)

    bench = commands.add_parser("bench", help="methods x budgets x seeds, with the full-data row; prints a table")
    _add_dataset_arguments(bench)
    bench.add_argument("--methods", nargs="+", default=[m.name for m in all_methods() if m.in_default_bench],
                       choices=[FULL, *method_names()])
    bench.add_argument("--budgets", nargs="+", type=_budget, default=[10, 20, 50], metavar="N",
                       help="synthetic sequences per run (default 10 20 50), or `auto`: a budget ladder per method, "
                            f"{', '.join(map(str, ladder_budgets(10 ** 9)[:6]))}, ... until its students reach "
                            f"{STOP_RATIO:.0%} of full-data NDCG@10 or its synthetic data holds "
                            f"{STOP_POSITION_SHARE:.0%} of the training positions, at most the usable sequences"
                            .replace("%", "%%"))  # argparse formats help with %
    bench.add_argument("--out", type=Path, help="write the JSON results here (its folder is created)")
    _add_distill_arguments(bench)
    _add_resume_command(commands)
    return parser


# Method settings on the command line: (flag, config field, type, help). Each method takes the ones its
# config has (jobs.JobSpec.distill works the same way); a flag not given leaves every method's default.
_DEFAULTS = FosterConfig()
METHOD_FLAGS = (
    ("--steps", "steps", int, f"FOSTER / bptt optimisation steps (default {_DEFAULTS.steps})"),
    ("--subset-size", "subset_size", int, f"N sampled items per step; 0 = all (default {_DEFAULTS.subset_size})"),
    ("--reset-every", "reset_every", int, f"R, FOSTER's steps between resets; 0 = never (default {_DEFAULTS.reset_every})"),
    ("--reg-weight", "reg_weight", float, f"mu, FOSTER's weight of L_r; 0 = off (default {_DEFAULTS.reg_weight})"),
    ("--label-support", "label_support", int,
     f"items kept in each label distribution, the expert's top predictions (default {_DEFAULTS.label_support})"),
)


def _add_distill_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=_positive_int, default=3, help="students trained per evaluation (mean and std)")
    parser.add_argument("--students", nargs="+", default=[DEFAULT_ARCHITECTURE], choices=architecture_names(),
                        metavar="ARCH", help="student architectures trained on the synthetic data (and, in bench, "
                        "on full data), the first for the headline numbers; "
                        + "; ".join(f"{n}: {get_architecture(n).help}" for n in architecture_names()))
    for flag, name, kind, text in METHOD_FLAGS:
        parser.add_argument(flag, dest=name, type=kind, default=None, help=text)
    parser.add_argument("--init-selection", default=None, choices=SELECTIONS,
                        help=f"real sequences FOSTER and bptt start from (default {_DEFAULTS.init_selection})")
    parser.add_argument("--init-packing", default=None, choices=PACKING,
                        help="start from real sequences laid end to end (auto: when they are short)")
    parser.add_argument("--label-expert", default=None, choices=LABEL_EXPERTS,
                        help="which model labels the data `teacher` and FOSTER hand out: refit, the expert refit on "
                             "the whole training split, or holdout, the expert itself "
                             f"(default {_DEFAULTS.label_expert})")
    parser.add_argument("--teacher-selection", dest="selection", default=None, choices=SELECTIONS,
                        help=f"real sequences `teacher` labels (default {TeacherConfig().selection}, the baseline)")
    parser.add_argument("--runs-dir", type=Path, help="run store folder (default: $FOSTER_RUNS_DIR or ./runs)")


def context_without_expert(args: argparse.Namespace) -> DistillContext:
    """The dataset, its text embeddings and the expert's settings the arguments name; the expert not yet
    asked for (scripts that train the full-data students beside the expert start from this)."""
    dataset = load_dataset(args.dataset, DataConfig(args.min_interactions, args.max_len), items=args.items)
    print(f"Dataset {dataset.name}: {dataset.num_users} users, {dataset.num_items} items")
    encoding = progress_display("Encoding item texts", "text")
    context = build_context(dataset, ModelConfig(max_len=args.max_len),
                            TrainConfig(seed=args.seed, device=args.device, precision=args.precision,
                                        time_limit_s=args.time_limit),
                            EncoderConfig(model_path=args.encoder), args.cache_dir, encoding.set)
    encoding.close()
    return context


def _context_from_args(args: argparse.Namespace, budgets: list[int]) -> DistillContext:
    context = context_without_expert(args)
    for budget in budgets:  # before minutes of expert training, not after
        check_budget(context, budget)
    if not needs_expert(getattr(args, "methods", None) or [args.method]):
        return _first_process_carries_on(context)  # none of the methods uses the expert: nothing trains it
    if context.expert_cached():
        print("Expert (training split, epoch chosen on its own holdout): cached", flush=True)
    else:
        # A killed training's state: it continues from it when its configs and data match (the epochs say).
        left = " from where a killed training stopped" if (context.expert_folder() / RESUME_FILE).is_file() else ""
        print(f"Expert: training on the training split{left}, epoch chosen on its own holdout "
              f"({len(context.holdout.train)} users)", flush=True)
        context.on_expert_epoch = EpochReporter("expert", context.expert_cfg, say)
    context.expert()
    print(f"Expert ready ({context.expert_seconds:.0f} s of training)", flush=True)
    if needs_labeller(getattr(args, "methods", None) or [args.method], _method_values(args)):
        if not context.labeller_cached():
            print("Labeller: the expert refit on the whole training split for its chosen epochs", flush=True)
            context.on_expert_epoch = EpochReporter("labeller", context.labeller_config(), say)
        context.labeller()
        print(f"Labeller ready ({context.labeller_seconds:.0f} s of training)", flush=True)
    return _first_process_carries_on(context)


class _OtherProcessDone(Exception):
    """Under torchrun, a process other than the first has done its share (the expert's training)."""


def _first_process_carries_on(context: DistillContext) -> DistillContext:
    """Under torchrun, the processes train the expert together; the distillation, its students and the
    full-data reference then run on the first process alone, and the others end."""
    if distributed.active():
        first = distributed.is_main()
        distributed.stop()
        if not first:
            raise _OtherProcessDone
    return context


def _method_values(args: argparse.Namespace) -> dict:
    """The method settings given on the command line (with the seed and device every method has)."""
    names = [name for _, name, _, _ in METHOD_FLAGS] + ["init_selection", "init_packing", "selection", "label_expert"]
    given = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    return {"seed": args.seed, "device": args.device, **given}


def _student_config(args: argparse.Namespace) -> StudentConfig:
    return StudentConfig(seeds=tuple(range(args.seeds)), device=args.device,
                         architectures=tuple(dict.fromkeys(args.students)))


def _command_distill(args: argparse.Namespace) -> int:
    context = _context_from_args(args, [args.budget])
    steps = method_progress(args.method)

    def student_line(line: str) -> None:  # students come after the last step: a bar is done by then
        steps.close()
        say(line)

    outcome = run_method(context, args.method, args.budget, get_method(args.method).config(_method_values(args)),
                         _student_config(args), RunStore(args.runs_dir), on_event=steps, progress=student_line)
    steps.close()
    print(f"Run {outcome.run.id} ({outcome.run.status['status']}) in {outcome.run.path}")
    if outcome.results:
        test = outcome.results["test"]
        print(f"test NDCG@10 {test['ndcg@10']['mean']:.4f} ± {test['ndcg@10']['std']:.4f}, "
              f"Recall@10 {test['recall@10']['mean']:.4f} ± {test['recall@10']['std']:.4f} "
              f"({len(outcome.results['per_seed_test'])} students); distilled in {outcome.distill_seconds:.1f}s")
        for arch, numbers in outcome.results.get("by_architecture", {}).items():
            print(f"  {arch}: test NDCG@10 {numbers['test']['ndcg@10']['mean']:.4f} ± "
                  f"{numbers['test']['ndcg@10']['std']:.4f}, student training {numbers['student_train_seconds']:.1f} s")
    return 0


def _command_bench(args: argparse.Namespace) -> int:
    ladder = LADDER_WORD in args.budgets
    if ladder and len(args.budgets) > 1:
        raise ValueError("--budgets auto tries the budgets itself; give either auto or numbers, not both")
    context = _context_from_args(args, [] if ladder else args.budgets)
    budgets = ladder_budgets(len(context.usable)) if ladder else args.budgets
    values = _method_values(args)
    configs = {m: get_method(m).config(values) for m in args.methods if m != FULL}
    lines = EventLines("")
    stopped: dict[str, str] = {}

    def new_run(label: str) -> None:
        lines.label, lines.last_tenth = label, -1
        print(f"- {label}", flush=True)

    def stop_after(row: dict) -> str | None:
        reason = ladder_stop(row)
        if reason:
            stopped[row["method"]] = reason
        return reason

    if ladder:
        print(f"Budget ladder: {', '.join(map(str, budgets))} synthetic sequences, each method until its students "
              f"reach {STOP_RATIO:.0%} of full-data NDCG@10 or its data {STOP_POSITION_SHARE:.0%} of the training "
              "positions", flush=True)
    report = run_bench(context, args.methods, budgets, configs, _student_config(args), RunStore(args.runs_dir),
                       progress=new_run, details=say, on_event=lines, stop_after=stop_after if ladder else None)
    if ladder:
        report["ladder"] = {"budgets": budgets, "stop_ratio": STOP_RATIO,
                            "stop_position_share": STOP_POSITION_SHARE, "stopped": stopped}
    return _finish(format_bench_table(report), report, args.out)


def _command_train(args: argparse.Namespace) -> int:
    dataset = load_dataset(args.dataset, DataConfig(args.min_interactions, args.max_len), items=args.items)
    print(f"Dataset {dataset.name}: {dataset.num_users} users, {dataset.num_items} items, "
          f"{dataset.num_interactions} interactions")
    for note in dataset.notes:
        print(f"  note: {note}")

    encoding = progress_display("Encoding item texts", "text")
    train_cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                            precision=args.precision, seed=args.seed, device=args.device, time_limit_s=args.time_limit)
    print("Training text-SASRec on the training split, epoch chosen on validation (early stopping)", flush=True)
    report = train_full_data(
        dataset,
        ModelConfig(hidden=args.hidden, blocks=args.blocks, max_len=args.max_len),
        train_cfg,
        EncoderConfig(model_path=args.encoder),
        cache_dir=args.cache_dir,
        checkpoint_dir=args.checkpoint_dir,
        encode_progress=encoding.set,
        on_epoch=EpochReporter("training", train_cfg, say),  # the lines `distill` prints for its expert
    )
    encoding.close()
    if not report:  # under torchrun, a process other than the first: it trained, the first one reports
        return 0
    return _finish(format_summary(report), report, args.out)


# ----------------------------------------------------------------------------- resume (reliability issue)


def _add_resume_command(commands: argparse._SubParsersAction) -> None:
    resume = commands.add_parser(
        "resume", help=f"continue an interrupted run of {' or '.join(m.name for m in all_methods() if m.resumable)} "
                       "from its latest checkpoint of S, in its own folder")
    resume.add_argument("run_id", help="the run's folder name in the run store")
    resume.add_argument("--runs-dir", type=Path, help="run store folder (default: $FOSTER_RUNS_DIR or ./runs)")
    resume.add_argument("--dataset", help="the run's dataset, when the run does not record where it came from "
                                          "(runs made by `distill` on a file or folder)")
    resume.add_argument("--cache-dir", help="the cache folder the run used (default: $FOSTER_CACHE_DIR or ~/.cache/foster_studio)")


def _command_resume(args: argparse.Namespace) -> int:
    steps = method_progress(args.run_id)
    try:
        outcome = resume_in_foreground(args.run_id, args.runs_dir, args.dataset, args.cache_dir, steps)
    except RunNotFound as exc:
        raise ValueError(exc.args[0]) from None
    steps.close()
    print(f"Run {outcome.run.id} ({outcome.run.status['status']}) in {outcome.run.path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not interactive():
        os.environ.setdefault(HF_BARS_OFF, "1")
    try:
        _check_out(getattr(args, "out", None))
        if args.command in ("train", "distill", "bench") and distributed.start(args.device):
            if not distributed.is_main():  # one process speaks: the others' lines would repeat its own
                sys.stdout = open(os.devnull, "w")
            print(f"Training on {distributed.world_size()} processes (torchrun, DistributedDataParallel)", flush=True)
        if args.command == "train":
            code = _command_train(args)
            distributed.stop()
            return code
        if args.command == "distill":
            return _command_distill(args)
        if args.command == "bench":
            return _command_bench(args)
        if args.command == "resume":
            return _command_resume(args)
    except _OtherProcessDone:
        return 0
    except (DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an unreadable encoder folder, an unwritable cache or runs folder
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    return 1
