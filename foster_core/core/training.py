"""Training a recommender on real sequences (hard next-item labels) or on soft synthetic sequences: the
expert (a TextSASRec) and every student, of any architecture in architectures.py.

Both go through one loop, `fit`: epochs of mini-batches, validation NDCG@10 after each epoch, early
stopping with the best epoch's weights restored, and an optional checkpoint per epoch (the expert
trajectory that FOSTER's parameter reset draws from). Only training-split items ever reach a batch;
validation items are used to choose the epoch, never as inputs or labels.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from . import distributed
from .atomic import atomic_write
from .batches import shuffled_batches
from .data import PAD_ID, Split, next_item_pairs  # next_item_pairs: imported from here by the methods
from .evaluation import evaluate_model
from .architectures import DEFAULT_ARCHITECTURE, get_architecture
from .model import ItemTextModel, ModelConfig
from .synthetic import SyntheticData, expected_embeddings
from .runtime import autocast, check_precision, device_key, resolve_device, seed_everything
from .train_state import fingerprint, load_train_state, random_streams, restore_random_streams, save_train_state

EpochCallback = Callable[[dict], None]
SELECTION_METRIC = "ndcg@10"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 200  # upper bound; early stopping usually ends sooner
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 15  # epochs without a better validation NDCG@10 before stopping
    eval_every: int = 1  # epochs between validation checks (many tiny epochs on synthetic data)
    seed: int = 0
    device: str = "auto"
    # "fp32", or "bf16" autocast of the forward passes on CUDA (refused on the CPU; see runtime.check_precision).
    precision: str = "fp32"
    # Stop after the first epoch that ends past this many seconds of training; 0 = no limit. For runs that
    # must fit a time budget (the GPU benchmark); the best epoch so far is restored as usual.
    time_limit_s: float = 0.0
    # The softmax of a training step runs over the items the batch touches (its inputs and targets, or a
    # synthetic batch's supports) plus this many items drawn uniformly, with the sampled-softmax correction
    # (see `softmax_items`): the step's cost then follows the batch, not the catalogue. Catalogues of at most
    # `full_softmax_up_to` items keep the exact softmax over every item. 0 negatives = always exact.
    softmax_negatives: int = 2048
    full_softmax_up_to: int = 8192
    # Real-data batches of rows with similar lengths, so a batch of short rows does not pay for the padding of
    # one long one: shuffled rows are cut into chunks of `bucket_chunk` batches' worth, each chunk sorted by
    # length and cut into batches of about batch_size x the mean row length real positions (a fixed row
    # count gave short rows' few positions a whole step each: -5% expert holdout NDCG@10). One global sort
    # cost full-data students 2.5% of their test NDCG@10 on amazon_scientific; chunks of 8 did not, and cut
    # an amazon_games epoch about 3x. Off by default: FOSTER scored lower on both bucketed experts tried
    # (docs/distillation-notes.md, 2026-12-03). For large short-sequence data where speed matters most.
    bucket_by_length: bool = False
    bucket_chunk: int = 8
    # Early stopping validates on a fixed sample of at most this many users (the same users for every epoch,
    # seed and method; 0 = all): at tens of thousands of users a full-ranking pass costs more than an epoch
    # on distilled data, and 10,000 users pin NDCG@10 to about +-0.002. Test metrics always use every user.
    valid_users: int = 10_000

    def __post_init__(self) -> None:
        check_precision(self.precision)
        if self.softmax_negatives < 0 or self.full_softmax_up_to < 0:
            raise ValueError("softmax_negatives and full_softmax_up_to must be 0 or positive")
        if self.time_limit_s < 0:
            raise ValueError(f"time_limit_s must be 0 (no limit) or positive, not {self.time_limit_s}")
        if self.bucket_chunk < 0:
            raise ValueError(f"bucket_chunk must be 0 (one sort of every row) or positive, not {self.bucket_chunk}")


@dataclass
class TrainResult:
    model: ItemTextModel
    best_epoch: int
    best_valid: dict[str, float]
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0  # the whole loop: training steps and validation passes
    checkpoints: list[Path] = field(default_factory=list)
    eval_seconds: float = 0.0  # of `seconds`, the validation passes

    @property
    def train_seconds(self) -> float:
        """Seconds spent on training steps alone (what distillation makes cheaper)."""
        return self.seconds - self.eval_seconds


def item_subset(num_items: int, size: int, generator: torch.Generator, *always: torch.Tensor) -> torch.Tensor:
    """V_s, the items a step's softmax runs over: `size` items drawn uniformly (with replacement) plus every
    non-padding item of `always` (a batch's targets, S's supports, ...), sorted and unique, on the CPU.
    `size <= 0` means the whole catalogue. Sorted, so `searchsorted` maps an item id to its row in V_s."""
    if size <= 0:
        return torch.arange(num_items)
    parts = [torch.randint(num_items, (size,), generator=generator)]
    parts += [items[items != PAD_ID].flatten().cpu() for items in always]
    return torch.unique(torch.cat(parts))


def exact_softmax(num_items: int, cfg: TrainConfig) -> bool:
    """Whether a step's softmax runs over every item (small catalogues, or no negatives asked for)."""
    return cfg.softmax_negatives == 0 or num_items <= cfg.full_softmax_up_to


def softmax_items(num_items: int, touched: torch.Tensor, cfg: TrainConfig,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(items, log_weights): the sorted items a step's softmax runs over, and what to add to their scores.

    Exact (every item, weights 0) for catalogues of at most `cfg.full_softmax_up_to` items or with no
    negatives. Otherwise the `touched` items (sorted, unique: a batch's inputs and targets) are always in,
    with weight 0, and `cfg.softmax_negatives` uniform draws (with replacement) add other items. Each other
    item is drawn with probability q = 1 - (1 - 1/M)^N, so weighting its exp(score) by 1/q (log-weight
    -log q) makes the sum an unbiased estimate of the full partition function: the sampled-softmax correction
    (Jean et al., 2015, "On using very large target vocabulary"), with the sure items counted exactly."""
    if exact_softmax(num_items, cfg):
        return torch.arange(num_items), torch.zeros(num_items)
    drawn = torch.unique(torch.randint(num_items, (cfg.softmax_negatives,), generator=generator))
    drawn = drawn[~torch.isin(drawn, touched)]
    items, order = torch.sort(torch.cat([touched, drawn]))
    q = 1.0 - (1.0 - 1.0 / num_items) ** cfg.softmax_negatives
    weights = torch.cat([torch.zeros(len(touched)), torch.full((len(drawn),), -float(np.log(q)))])
    return items, weights[order]


def _trim_padding(*tensors: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Drop the leading columns that are padding in every row: exact, since positions are right-aligned."""
    first = int(real.any(0).nonzero()[0]) if bool(real.any()) else real.shape[1] - 1
    return tuple(t[:, first:].contiguous() for t in tensors)


def train_on_sequences(
    text_embeddings: torch.Tensor,
    train: list[np.ndarray],
    split: Split | None = None,
    model_cfg: ModelConfig | None = None,
    cfg: TrainConfig | None = None,
    checkpoint_dir: str | Path | None = None,
    callback: EpochCallback | None = None,
    arch: str = DEFAULT_ARCHITECTURE,
    resume_dir: str | Path | None = None,
) -> TrainResult:
    """Train a model of architecture `arch` on real training-split sequences, with cross-entropy over all
    items; a history longer than the model's window trains in windows (`next_item_pairs`), so every one of
    its training targets counts. A killed training resumes from `resume_dir` (by default `checkpoint_dir`;
    see `fit`)."""
    model_cfg, cfg = model_cfg or ModelConfig(), cfg or TrainConfig()
    inputs, targets = next_item_pairs(train, model_cfg.max_len)
    if len(inputs) == 0:
        raise ValueError("No training sequence has two or more items; nothing to learn from.")
    inputs, targets = torch.from_numpy(inputs), torch.from_numpy(targets)

    sampler = torch.Generator().manual_seed(cfg.seed + 1)  # negatives: their own stream, apart from batch order
    exact = exact_softmax(text_embeddings.shape[0], cfg)

    def batch_loss(model: ItemTextModel, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        seqs, next_items = _trim_padding(*batch, real=batch[0] != PAD_ID)
        real = next_items != PAD_ID
        if exact:  # one table of every item, for the inputs and the scores alike
            table = model.item_embeddings()
            return F.cross_entropy(model(seqs, item_table=table)[real] @ table.T, next_items[real])
        # One item table per batch, for only the items the step needs: inputs, targets and sampled negatives.
        touched = torch.unique(torch.cat([seqs[seqs != PAD_ID], next_items[real]])).cpu()
        items, log_weights = softmax_items(model.num_items, touched, cfg, sampler)
        items, log_weights = items.to(seqs.device), log_weights.to(seqs.device)
        table = model.item_embeddings(items)
        hidden = model(seqs, item_table=table, table_items=items)[real]  # only real positions: padding costs nothing
        scores = hidden @ table.T + log_weights
        return F.cross_entropy(scores, torch.searchsorted(items, next_items[real]))

    lengths = (inputs != PAD_ID).sum(1) if cfg.bucket_by_length else None
    return fit(text_embeddings, (inputs, targets), batch_loss, split, model_cfg, cfg, checkpoint_dir, callback,
               lengths, arch, streams=(sampler,), resume_dir=resume_dir)


def train_on_soft(
    text_embeddings: torch.Tensor,
    soft_inputs: torch.Tensor,
    soft_targets: torch.Tensor,
    split: Split | None = None,
    model_cfg: ModelConfig | None = None,
    cfg: TrainConfig | None = None,
    callback: EpochCallback | None = None,
    mask: torch.Tensor | None = None,
) -> TrainResult:
    """Train on synthetic sequences: inputs (n, L, M), next-item label distributions (n, L, M), and an
    optional (n, L) mask of real positions (False = left padding)."""
    model_cfg, cfg = model_cfg or ModelConfig(), cfg or TrainConfig()
    if soft_inputs.shape != soft_targets.shape or soft_inputs.shape[-1] != text_embeddings.shape[0]:
        raise ValueError(
            f"soft inputs {tuple(soft_inputs.shape)} and targets {tuple(soft_targets.shape)} must both be "
            f"(n, L, {text_embeddings.shape[0]})"
        )
    if mask is None:
        mask = torch.ones(soft_inputs.shape[:2], dtype=torch.bool)

    def batch_loss(model: ItemTextModel, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        probs, labels, real = batch
        table = model.item_embeddings()
        hidden = model.forward_soft(probs, table, real)
        real = real[:, -hidden.shape[1] :]
        log_probs = F.log_softmax(model.score(hidden[real], item_table=table), dim=-1)
        return -(labels[:, -hidden.shape[1] :][real] * log_probs).sum(-1).mean()

    tensors = (soft_inputs.float(), soft_targets.float(), mask.bool())
    return fit(text_embeddings, tensors, batch_loss, split, model_cfg, cfg, None, callback)


def train_on_synthetic(
    text_embeddings: torch.Tensor,
    synthetic: SyntheticData,
    split: Split | None = None,
    model_cfg: ModelConfig | None = None,
    cfg: TrainConfig | None = None,
    callback: EpochCallback | None = None,
    arch: str = DEFAULT_ARCHITECTURE,
) -> TrainResult:
    """Train a student of architecture `arch` on synthetic data alone (how every method is evaluated): soft
    inputs and soft labels over each position's candidate items.

    The cost follows the supports, O(n L K), never the dense (n, L, M) tensors of `train_on_soft`: inputs
    are expected embeddings over their candidates, and a label's log-probability needs only its candidates'
    scores and the partition function, which runs over the items `softmax_items` gives (the batch's
    supports plus sampled negatives, or the whole catalogue when it is small). With the exact softmax it
    computes the same loss as `train_on_soft` on `synthetic.dense(M)`."""
    model_cfg, cfg = model_cfg or ModelConfig(), cfg or TrainConfig()
    num_items = text_embeddings.shape[0]
    if int(max(synthetic.input_items.max(), synthetic.label_items.max())) >= num_items:
        raise ValueError(f"the synthetic data names items beyond this catalogue of {num_items} items")
    last = slice(-model_cfg.max_len, None)  # longer sequences keep their most recent positions, as real ones do
    packed = synthetic.segments is not None  # rows holding several sequences, kept apart by the student
    segments = synthetic.segments if packed else synthetic.mask.long()
    tensors = (synthetic.input_items[:, last], synthetic.input_probs[:, last].float(),
               synthetic.label_items[:, last], synthetic.label_probs[:, last].float(), synthetic.mask[:, last].bool(),
               segments[:, last])
    sampler = torch.Generator().manual_seed(cfg.seed + 1)
    exact = exact_softmax(num_items, cfg)

    def batch_loss(model: ItemTextModel, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        in_items, in_probs, lab_items, lab_probs, real, segments = _trim_padding(*batch, real=batch[4])
        segments = segments if packed else None
        if exact:  # item ids are rows of the whole catalogue's table: no lookup into a subset
            table = model.item_embeddings()
            hidden = model.forward_tokens(expected_embeddings(in_items, in_probs, table), real, segments)[real]
            log_probs = F.log_softmax(hidden @ table.T, dim=-1)
            return -(lab_probs[real] * log_probs.gather(-1, lab_items[real])).sum(-1).mean()
        touched = torch.unique(torch.cat([in_items[real].flatten(), lab_items[real].flatten()])).cpu()
        items, log_weights = softmax_items(model.num_items, touched, cfg, sampler)
        items, log_weights = items.to(real.device), log_weights.to(real.device)
        table = model.item_embeddings(items)
        tokens = expected_embeddings(torch.searchsorted(items, in_items).clamp(max=len(items) - 1), in_probs, table)
        hidden = model.forward_tokens(tokens, real, segments)[real]
        scores = hidden @ table.T + log_weights
        log_z = torch.logsumexp(scores, dim=-1, keepdim=True)
        label_scores = scores.gather(-1, torch.searchsorted(items, lab_items[real]))
        return -(lab_probs[real] * (label_scores - log_z)).sum(-1).mean()

    return fit(text_embeddings, tensors, batch_loss, split, model_cfg, cfg, None, callback, arch=arch, streams=(sampler,))


def fit(
    text_embeddings: torch.Tensor,
    tensors: tuple[torch.Tensor, ...],
    batch_loss: Callable[[ItemTextModel, tuple[torch.Tensor, ...]], torch.Tensor],
    split: Split | None,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    checkpoint_dir: str | Path | None = None,
    callback: EpochCallback | None = None,
    lengths: torch.Tensor | None = None,
    arch: str = DEFAULT_ARCHITECTURE,
    streams: tuple[torch.Generator, ...] = (),
    resume_dir: str | Path | None = None,
) -> TrainResult:
    """The one training loop, for a fresh model of architecture `arch` built on `model_cfg` (the expert's
    config; the architecture changes its own fields). Without a split it runs all epochs and keeps the last
    weights. With `lengths` (one per row) each batch holds rows of similar length (see `batches.shuffled_batches`).

    With `checkpoint_dir` it saves each epoch's weights there. After each epoch it saves everything needed
    to continue in `resume_dir` (by default `checkpoint_dir`; see train_state.py): a call after a kill
    resumes at the next epoch and ends as an unbroken run would. The caller removes that state
    (`clear_train_state`) once it has kept the result, so a kill in between loses nothing either. `streams`
    are the batch loss's own random generators (sampled negatives), saved with the rest."""
    generator = seed_everything(cfg.seed)
    device = distributed.local_device(resolve_device(cfg.device))
    check_precision(cfg.precision, device)
    model = get_architecture(arch).build(torch.as_tensor(text_embeddings), model_cfg).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_of = distributed.step_loss(model, batch_loss, device)  # under torchrun, DDP averages the gradients
    main = distributed.is_main()  # only the first process writes checkpoints and the resume state
    state_dir = resume_dir if resume_dir is not None else checkpoint_dir
    folder = Path(state_dir) if state_dir is not None else None
    key = layout = ""
    if folder is not None:
        key = fingerprint({**asdict(cfg), "device": device_key(cfg.device)}, asdict(model_cfg), arch,
                          tensors=(torch.as_tensor(text_embeddings), *tensors))
        layout = [type(model).__name__, {name: list(t.shape) for name, t in model.state_dict().items()}]
    saved = load_train_state(folder, key) if folder is not None else None
    # The model's code changed since the state was saved: start afresh. (States without a layout come from
    # this feature's first version, whose amazon_games trainings were still running: they are accepted.)
    if saved is not None and saved.get("layout", layout) != layout:
        saved = None

    def keep_checkpoint(epoch: int) -> Path:
        """This epoch's weights in the trajectory; under torchrun only the first process writes them."""
        path = Path(checkpoint_dir) / f"epoch_{epoch:03d}.safetensors"
        return save_checkpoint(model, path) if main else path

    loop, checkpoints = LoopState(), []
    if saved is not None:  # a killed run of this same training: continue after its last finished epoch
        model.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimiser"])
        restore_random_streams(saved["random"], (generator, *streams), device)
        loop = LoopState(saved["history"], BestEpoch(**saved["best"]), saved["elapsed"], saved["finished"])
        if checkpoint_dir is not None:
            checkpoints = [Path(checkpoint_dir) / f"epoch_{e:03d}.safetensors" for e in range(len(loop.history) + 1)]
    elif checkpoint_dir is not None:
        checkpoints.append(keep_checkpoint(0))

    def keep_state(state: LoopState) -> None:
        save_train_state(folder, {
            "fingerprint": key, "layout": layout, "model": model.state_dict(), "optimiser": optimiser.state_dict(),
            "random": random_streams((generator, *streams), device), "history": state.history,
            "best": asdict(state.best), "elapsed": state.elapsed, "finished": state.finished})

    def train_epoch(epoch: int) -> dict:
        model.train()
        losses = []
        for batch in shuffled_batches(tensors, cfg.batch_size, generator, lengths, cfg.bucket_chunk):
            with autocast(device, cfg.precision):
                loss = loss_of(*(t.to(device) for t in batch))
            if distributed.any_process(not bool(torch.isfinite(loss))):  # every process stops alike
                raise FloatingPointError(f"Training loss became {loss.item()} at epoch {epoch}; lower the learning rate.")
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        if checkpoint_dir is not None:
            checkpoints.append(keep_checkpoint(epoch))
        return {"loss": distributed.mean_over_processes({"loss": float(np.mean(losses))}, len(losses))["loss"]}

    evaluate = None
    if split is not None:
        # Each process validates its share of the users; the metrics are those of all of them.
        valid_split = split.sample_users(cfg.valid_users)
        own = valid_split.shard(distributed.rank(), distributed.world_size())

        def evaluate() -> dict:
            return distributed.mean_over_processes(evaluate_model(model, own, "valid"), len(own.train))
    history, best = run_epochs(cfg, train_epoch, evaluate, lambda: copy.deepcopy(model.state_dict()), callback,
                               loop, keep_state if folder is not None and main else None)
    if best.state is not None:
        model.load_state_dict(best.state)
    model.eval()
    # Seconds from the loop's own clock: training and validation, across kills, without the state saves.
    return TrainResult(model, best.epoch or history[-1]["epoch"], best.valid, history, history[-1]["seconds"],
                       checkpoints, sum(r.get("eval_seconds", 0.0) for r in history))


@dataclass
class BestEpoch:
    """The epoch with the best validation NDCG@10 so far, and a snapshot of what it trained."""

    epoch: int = 0  # 0 = none evaluated yet
    score: float = -1.0
    valid: dict[str, float] = field(default_factory=dict)
    state: object = None


@dataclass
class LoopState:
    """Where the epoch loop is: what `fit` saves after each epoch and hands back to resume a killed run."""

    history: list[dict] = field(default_factory=list)
    best: BestEpoch = field(default_factory=BestEpoch)
    elapsed: float = 0.0  # seconds of the loop so far, before any kill
    finished: bool = False  # the loop had stopped (a kill after that must not train one more epoch)


def run_epochs(cfg: TrainConfig, train_epoch: Callable[[int], dict], evaluate: Callable[[], dict] | None,
               snapshot: Callable[[], object], callback: EpochCallback | None = None,
               resumed: LoopState | None = None,
               after_epoch: Callable[[LoopState], None] | None = None) -> tuple[list[dict], BestEpoch]:
    """The one epoch loop with early stopping, for every trainer (`fit`, `finetune.train_finetuned`).

    Each epoch: `train_epoch(epoch)` (its dict joins the epoch's record), validation every `eval_every`
    epochs and at the last, a snapshot of the best epoch; stop after `patience` epochs without a better
    validation NDCG@10, or past `time_limit_s`. Without `evaluate` every epoch runs and nothing is kept.
    `resumed` continues a loop from its saved state; `after_epoch` sees the state after every epoch."""
    state = resumed or LoopState()
    start = time.perf_counter() - state.elapsed
    history, best = state.history, state.best
    for epoch in range(len(history) + 1, cfg.epochs + 1):
        if state.finished:
            break
        record = {"epoch": epoch, **train_epoch(epoch), "seconds": time.perf_counter() - start}
        if evaluate is not None and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
            started = time.perf_counter()
            valid = evaluate()
            record["valid"] = valid
            record["eval_seconds"] = time.perf_counter() - started
            record["seconds"] = time.perf_counter() - start
            if valid[SELECTION_METRIC] > best.score:
                best = BestEpoch(epoch, valid[SELECTION_METRIC], valid, snapshot())
        history.append(record)
        if callback:
            callback(record)
        patience_out = evaluate is not None and epoch - best.epoch >= cfg.patience
        # Each process reads its own clock: the time limit stops them all when it stops any.
        if distributed.any_process(not patience_out and bool(cfg.time_limit_s) and record["seconds"] >= cfg.time_limit_s):
            record["stopped"] = "time_limit_s"
        state.best, state.elapsed = best, record["seconds"]
        state.finished = patience_out or "stopped" in record or epoch == cfg.epochs
        if after_epoch:
            saving = time.perf_counter()
            after_epoch(state)
            start += time.perf_counter() - saving  # keeping the state is not training: off the clock
        if state.finished:
            break
    return history, best


def save_checkpoint(model: ItemTextModel, path: Path) -> Path:
    """Weights only (safetensors), written to a temporary file and renamed, so a kill never leaves half a file."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return atomic_write(path, lambda tmp: save_file(state, tmp))


def load_checkpoint(model: ItemTextModel, path: str | Path) -> ItemTextModel:
    model.load_state_dict(load_file(str(path), device=str(next(model.parameters()).device)))
    return model
