"""Looking inside synthetic data: sequence embeddings, a 2-D map, nearest real items and sequences, popularity.

Real and synthetic sequences are embedded in one space, either
- "hidden": the expert recommender's last hidden state (what the recommender makes of the sequence), or
- "text": the mean expected item-text embedding over the sequence's positions (what the sequence is about);
then mapped to 2-D with UMAP (PCA for very few points). Fits are cached on disk, keyed by the points.
"""

from __future__ import annotations

import hashlib
import html
import re
import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pandas.io.formats.style import Styler

from ..core.atomic import atomic_write
from ..core.copying import copy_report, top_input_sequences
from ..core.data import item_counts
from ..core.synthetic import SyntheticData, expected_embeddings
from ..core.text_encoder import default_cache_dir
from ..methods.expert import DistillContext

SPACES = ("hidden", "text")


@dataclass(frozen=True)
class MapConfig:
    max_real: int = 2000  # real sequences on the map; larger sets are sampled
    seed: int = 0
    n_neighbors: int = 15
    min_dist: float = 0.1
    method: str = "umap"  # "umap" or "pca"


def expert_is_cached(context: DistillContext) -> bool:
    """True when the expert can be loaded rather than trained (the app never trains in its own process)."""
    return context.expert_cached()


def sample_real(context: DistillContext, max_real: int, seed: int = 0) -> np.ndarray:
    """Indices of the training sequences drawn for the map (all of them when there are few)."""
    n = len(context.train)
    if n <= max_real:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_real, replace=False))


def _unit(x: torch.Tensor) -> np.ndarray:
    return F.normalize(x.float(), dim=-1).numpy()


@torch.no_grad()
def real_embeddings(context: DistillContext, indices: np.ndarray, space: str) -> np.ndarray:
    """(len(indices), d) unit vectors for real training sequences."""
    if space == "hidden":
        return context.sequence_embeddings(indices).numpy()
    text = context.text_embeddings.float()
    return _unit(torch.stack([text[torch.from_numpy(context.train[i])].mean(0) for i in indices]))


@torch.no_grad()
def synthetic_embeddings(context: DistillContext, synthetic: SyntheticData, space: str) -> np.ndarray:
    """(n, d) unit vectors for synthetic sequences, comparable with `real_embeddings` in the same space.

    A synthetic sequence is its inputs followed by its last label, as a real training sequence is its
    inputs followed by its last target; a real sequence stored as synthetic data lands on itself."""
    last_label = _last_label(synthetic)  # (n, K) items and probs of the last real position's label
    if space == "hidden":
        expert = context.expert()
        device = next(expert.parameters()).device  # the expert lives on the GPU when there is one
        table = expert.item_embeddings()
        tokens = expected_embeddings(synthetic.input_items.to(device), synthetic.input_probs.float().to(device), table)
        final = expected_embeddings(last_label[0].to(device), last_label[1].float().to(device), table)
        tokens = torch.cat([tokens, final.unsqueeze(1)], dim=1)  # left padding keeps real positions last
        timeline = torch.cat([synthetic.mask, torch.ones(len(tokens), 1, dtype=torch.bool)], dim=1).to(device)
        return _unit(expert.forward_tokens(tokens[:, -context.model_cfg.max_len:],
                                           timeline[:, -context.model_cfg.max_len:])[:, -1].cpu())
    text = context.text_embeddings.float()
    per_position = position_text_embeddings(context, synthetic)  # (n, L, d)
    mask = synthetic.mask.unsqueeze(-1).float()
    final = expected_embeddings(last_label[0], last_label[1].float(), text)
    return _unit(((per_position * mask).sum(1) + final) / (mask.sum(1) + 1))


def _last_label(synthetic: SyntheticData) -> tuple[torch.Tensor, torch.Tensor]:
    last = synthetic.mask.long().cumsum(1).argmax(1)  # the last real position of each sequence
    rows = torch.arange(synthetic.num_sequences)
    return synthetic.label_items[rows, last], synthetic.label_probs[rows, last]


def position_text_embeddings(context: DistillContext, synthetic: SyntheticData, which: str = "input") -> torch.Tensor:
    """(n, L, d) expected item-text embedding of each position's input (or label) distribution."""
    items, probs = (synthetic.input_items, synthetic.input_probs) if which == "input" else (
        synthetic.label_items, synthetic.label_probs)
    text = context.text_embeddings.float()
    return expected_embeddings(items, probs.float(), text)


def project_2d(points: np.ndarray, config: MapConfig | None = None, cache_dir: str | Path | None = None) -> np.ndarray:
    """(n, 2) coordinates; UMAP (PCA below 10 points), read from the disk cache when these points were fitted."""
    config = config or MapConfig()
    points = np.ascontiguousarray(points, dtype=np.float32)
    method = config.method if len(points) >= 10 else "pca"
    # "exact-knn": UMAP fits on exact neighbours (below); maps cached before that are not reused.
    digest = hashlib.sha256(repr((method, "exact-knn", config.seed, config.n_neighbors, config.min_dist,
                                  points.shape)).encode())
    digest.update(points.tobytes())
    path = Path(cache_dir or default_cache_dir()) / "projections" / f"{digest.hexdigest()[:32]}.npy"
    if path.is_file():
        return np.load(path)
    if method == "umap":
        import umap  # imported here: numba compiles on first use, seconds the other pages should not pay

        k = max(2, min(config.n_neighbors, len(points) - 1))
        # The neighbours are computed here, exactly (a map holds a few thousand points at most), and handed to
        # UMAP: its own search is compiled by numba on first use, about 10 s of a first map on a 2-core CPU.
        with warnings.catch_warnings():  # no search index is passed: UMAP warns that it cannot `transform`
            warnings.filterwarnings("ignore", message=".*knn_search_index.*")
            warnings.filterwarnings("ignore", message=".*n_jobs value.*")  # one thread, as a seeded fit must be
            reducer = umap.UMAP(n_neighbors=k, min_dist=config.min_dist, random_state=config.seed, metric="cosine",
                                precomputed_knn=cosine_neighbours(points, k), force_approximation_algorithm=True)
            coords = reducer.fit_transform(points)
    else:
        centred = points - points.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        coords = centred @ vt[:2].T
        if coords.shape[1] < 2:
            coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    coords = np.asarray(coords, dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: np.save(open(tmp, "wb"), coords))
    return coords


def cosine_neighbours(points: np.ndarray, k: int, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances), each (n, k): every point's k nearest points by cosine distance, itself first
    (as UMAP's own search returns them), computed exactly in row chunks."""
    unit = points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)
    indices, distances = [], []
    for start in range(0, len(unit), chunk):
        block = np.maximum(1.0 - unit[start : start + chunk] @ unit.T, 0.0)
        rows = np.arange(len(block))
        block[rows, start + rows] = -1.0  # itself first, even beside an identical point
        nearest = np.argsort(block, axis=1, kind="stable")[:, :k]
        found = np.take_along_axis(block, nearest, axis=1)
        indices.append(nearest)
        distances.append(np.maximum(found, 0.0))
    return np.concatenate(indices), np.concatenate(distances).astype(np.float32)


HOVER_WIDTH = 60  # characters per line of a hover label


def wrap_for_hover(text: str, width: int = HOVER_WIDTH) -> str:
    """A text whole, for a plotly hover label: HTML-escaped and wrapped with <br> between words or after a "|"
    (MovieLens lists genres as "Action|Adventure|Sci-Fi"); a word longer than a line keeps a line of its own."""
    lines, line = [], ""
    for space, word in re.findall(r"(\s*)([^\s|]*\|+|[^\s|]+)", str(text)):
        joined = line + (" " if space and line else "") + word
        if line and len(joined) > width:
            lines.append(line)
            joined = word
        line = joined
    return "<br>".join(html.escape(part, quote=False) for part in [*lines, line] if part)


def sequence_preview(texts: list[str], items: list[int] | np.ndarray, first: int = 3,
                     width: int = HOVER_WIDTH) -> str:
    """The first items of a sequence for a hover label: each item's whole text on lines of its own (wrapped
    between words), then how many items follow."""
    shown = [wrap_for_hover(f"{n + 1}. {texts[int(i)]}", width) for n, i in enumerate(list(items)[:first])]
    more = len(items) - len(shown)
    return "<br>".join(shown) + (f"<br>… and {more} more" if more > 0 else "")


def sequence_label(texts: list[str], items: list[int] | np.ndarray, width: int = 70) -> str:
    """A one-line plain label of a sequence (its first items' texts, cut between words), for a pick list."""
    joined = " → ".join(texts[int(i)] for i in list(items)[:3])
    return joined if len(joined) <= width else textwrap.shorten(joined, width, placeholder=" …")


def map_frame(context: DistillContext, synthetic: SyntheticData, space: str, config: MapConfig | None = None,
              cache_dir: str | Path | None = None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Everything the map draws: one row per point (x, y, source, index, hover text, one-line label), plus the
    embeddings (real, synthetic) for nearest-neighbour look-ups."""
    config = config or MapConfig()
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, not {space!r}")
    indices = sample_real(context, config.max_real, config.seed)
    real = real_embeddings(context, indices, space)
    syn = synthetic_embeddings(context, synthetic, space)
    coords = project_2d(np.concatenate([real, syn]), config, cache_dir)
    texts = context.dataset.item_texts
    rows = [{"source": "real", "index": int(i), "hover": sequence_preview(texts, context.train[i]),
             "label": sequence_label(texts, context.train[i])} for i in indices]
    rows += [{"source": "synthetic", "index": j, "hover": sequence_preview(texts, items),
              "label": sequence_label(texts, items)} for j, items in enumerate(top_input_sequences(synthetic))]
    frame = pd.DataFrame(rows)
    frame["x"], frame["y"] = coords[:, 0], coords[:, 1]
    return frame, real, syn


POSITION_COLUMNS = ["position", "rank", "input item", "input p", "next-item label", "label p",
                    "nearest real item (not itself)", "similarity"]


def position_table(context: DistillContext, synthetic: SyntheticData, j: int, k: int = 3,
                   neighbours: int = 3) -> pd.DataFrame:
    """Synthetic sequence j position by position, one row per (position, rank): the rank-th most probable input
    item and next-item label (text and probability, empty past a position's last item with probability above
    0), and the rank-th real item whose text is nearest to the position's expected input text, leaving out every
    item of the position's input support, shown or not (a one-hot position would otherwise find itself at
    similarity 1.00, and a soft one its own lower-ranked candidates)."""
    texts = context.dataset.item_texts
    in_items, in_probs = synthetic.top_items("input", k)
    lab_items, lab_probs = synthetic.top_items("label", k)
    expected = F.normalize(position_text_embeddings(context, synthetic)[j], dim=-1)
    similarity = expected @ F.normalize(context.text_embeddings.float(), dim=-1).T  # (L, M)

    def listing(items: torch.Tensor, probs: torch.Tensor, t: int) -> list[tuple[int, float]]:
        return [(int(i), float(p)) for i, p in zip(items[j, t], probs[j, t]) if float(p) > 0]

    rows = []
    for position, t in enumerate(synthetic.mask[j].nonzero().flatten().tolist()):
        inputs, labels = listing(in_items, in_probs, t), listing(lab_items, lab_probs, t)
        # The whole input support, not only the k shown: a low-probability input item is still the position's own.
        own = {int(i) for i, p in zip(synthetic.input_items[j, t], synthetic.input_probs[j, t]) if float(p) > 0}
        ranked = similarity[t].topk(min(neighbours + len(own), context.num_items))
        near = [(int(i), float(v)) for i, v in zip(ranked.indices, ranked.values) if int(i) not in own][:neighbours]
        for rank in range(max(len(inputs), len(labels), len(near))):
            cells = [_ranked_cell(found, rank, texts) for found in (inputs, labels, near)]
            rows.append(dict(zip(POSITION_COLUMNS, (position, rank + 1, *(v for c in cells for v in c)))))
    return pd.DataFrame(rows, columns=POSITION_COLUMNS)


def _ranked_cell(found: list[tuple[int, float]], rank: int, texts: list[str]) -> tuple[str, float]:
    """(text, value) of the rank-th (item, value) of a position's list, or ("", NaN) past its end."""
    return (texts[found[rank][0]], round(found[rank][1], 4)) if rank < len(found) else ("", np.nan)


def position_view(table: pd.DataFrame) -> Styler:
    """The position table for reading: the position number on its first row only, a rule above each new
    position and every other position shaded, probabilities and similarities to two decimals, blanks empty."""
    first = (table["rank"] == 1).to_numpy()
    shown = table.drop(columns=["rank"]).assign(
        position=[str(p) if f else "" for p, f in zip(table["position"], first)])
    group = np.cumsum(first) - 1

    def row_style(row: pd.Series) -> list[str]:
        at = table.index.get_loc(row.name)
        css = "border-top: 2px solid #555;" if first[at] and at > 0 else ""
        css += "background-color: rgba(27, 79, 156, 0.06);" if group[at] % 2 else ""
        return [css] * len(row)

    numbers = {c: "{:.2f}" for c in ("input p", "label p", "similarity")}
    return shown.style.apply(row_style, axis=1).format(numbers, na_rep="").hide(axis="index")


def nearest_real_sequences(context: DistillContext, real: np.ndarray, indices: np.ndarray, query: np.ndarray,
                           k: int = 5) -> pd.DataFrame:
    """The k real sequences (of those on the map) most similar to `query` in the map's embedding space."""
    similarity = real @ query
    order = np.argsort(-similarity)[:k]
    texts = context.dataset.item_texts
    return pd.DataFrame([{"real sequence": int(indices[o]), "similarity": round(float(similarity[o]), 3),
                          "length": len(context.train[indices[o]]),
                          "first items": " → ".join(texts[int(i)] for i in context.train[indices[o]][:4])}
                         for o in order])


COPY_COLUMNS = {  # the "How close to real users?" table: column -> what it holds, for the page's help texts
    "synthetic sequence": "The synthetic sequence's number (as on the map and in the pick list).",
    "positions": "Its positions (padding left out).",
    "nearest real user": "The training sequence holding the most of its positions' most probable input items "
                         "(ties: the longer copied run, then the lower number).",
    "positions shared": "Share of its positions whose most probable input item appears in that real user's "
                        "sequence.",
    "longest copied run": "The most consecutive positions that repeat that real user's items in the same order.",
    "longest run, any user": "The same with whichever real user gives the longest run (packed sequences hold "
                             "several users end to end).",
    "user of that run": "The training sequence of that longest run.",
    "sequences held": "The sequences it holds of 3 or more items: itself, or each real user's packed end to end.",
    "copied whole": "Of those, the ones that repeat a stretch of one real user's history in full and in order.",
}


def run_copying(results: dict | None, synthetic: SyntheticData, real: list[np.ndarray]) -> dict:
    """How closely a run's synthetic data copies real users: as its results recorded it, or (results from
    before they did) computed now from the synthetic data and the training split."""
    recorded = (results or {}).get("copying")
    return recorded if recorded else copy_report(synthetic, real).to_dict()


def copy_table(copying: dict) -> pd.DataFrame:
    """One row per synthetic sequence, the columns of COPY_COLUMNS (a missing real user is left empty)."""
    rows = copying.get("rows", [])
    values = {"synthetic sequence": "synthetic", "positions": "positions", "nearest real user": "nearest_real",
              "positions shared": "share", "longest copied run": "run", "longest run, any user": "longest_run",
              "user of that run": "longest_run_real", "sequences held": "sequences", "copied whole": "whole_histories"}
    frame = pd.DataFrame({column: [row.get(key) for row in rows] for column, key in values.items()},
                         columns=list(COPY_COLUMNS))
    # A whole number, or empty where no real user shares an item (or results recorded before the column).
    for column in ("nearest real user", "user of that run", "sequences held", "copied whole"):
        frame[column] = frame[column].astype("Int64")
    return frame


def with_copying(frame: pd.DataFrame, copying: dict) -> pd.DataFrame:
    """The map's frame with each synthetic point's `share` of positions in its nearest real user and its
    `longest run` copied from any real user (empty for real points), its hover text saying both."""
    by_index = {row["synthetic"]: row for row in copying.get("rows", [])}
    synthetic = (frame["source"] == "synthetic").to_numpy()
    rows = [by_index.get(int(i)) if s else None for i, s in zip(frame["index"], synthetic)]
    share = [r["share"] if r else np.nan for r in rows]
    longest = [r["longest_run"] if r else np.nan for r in rows]
    hover = [h + copy_hover(r) if r else h for h, r in zip(frame["hover"], rows)]
    return frame.assign(share=share, **{"longest run": longest, "hover": hover})


def copy_hover(row: dict) -> str:
    """The hover lines of a synthetic point about copying: its share in the nearest real user, its longest run."""
    if row.get("nearest_real") is None:
        return "<br><b>copies no real user</b>: none of its items is in the training data"
    return (f"<br><b>{row['share']:.0%} of positions</b> in real #{row['nearest_real']}; "
            f"<b>longest copied run</b> {row['longest_run']} items"
            + (f" (real #{row['longest_run_real']})" if row["longest_run_real"] != row["nearest_real"] else ""))


def item_mass(synthetic: SyntheticData, num_items: int) -> np.ndarray:
    """Total probability mass each item gets over all real input and label positions of the synthetic data."""
    mass = torch.zeros(num_items)
    for items, probs in ((synthetic.input_items, synthetic.input_probs), (synthetic.label_items, synthetic.label_probs)):
        keep = synthetic.mask.unsqueeze(-1).expand_as(items)
        mass.scatter_add_(0, items[keep], probs.float()[keep])
    return mass.numpy()


def popularity_profile(context: DistillContext, synthetic: SyntheticData, groups: int = 10) -> pd.DataFrame:
    """Share of interactions (real) and of probability mass (synthetic) per item-popularity group, most
    popular group first: a synthetic set collapsed onto blockbusters piles up in the first group."""
    counts = item_counts(context.train, context.num_items).astype(float)
    order = np.argsort(-counts, kind="stable")
    group_of = np.empty(context.num_items, dtype=int)
    group_of[order] = np.arange(context.num_items) * groups // context.num_items
    mass = item_mass(synthetic, context.num_items)
    real_share = np.bincount(group_of, weights=counts, minlength=groups) / max(counts.sum(), 1e-12)
    syn_share = np.bincount(group_of, weights=mass, minlength=groups) / max(mass.sum(), 1e-12)
    labels = [f"top {100 * (g + 1) // groups}%" if g == 0 else f"{100 * g // groups}-{100 * (g + 1) // groups}%"
              for g in range(groups)]
    return pd.DataFrame({"popularity group": labels * 2, "share": np.concatenate([real_share, syn_share]),
                         "source": ["real"] * groups + ["synthetic"] * groups})


def coverage_summary(context: DistillContext, synthetic: SyntheticData) -> dict[str, float]:
    real_items = np.unique(np.concatenate(context.train))
    return {
        "real catalogue coverage": len(real_items) / context.num_items,
        "synthetic catalogue coverage (p ≥ 0.01)": synthetic.coverage(context.num_items),
        "synthetic distinct top items": len(np.unique(np.concatenate([np.zeros(0, dtype=np.int64),
                                                                     *top_input_sequences(synthetic)]))),
    }


def real_popularity(context: DistillContext) -> np.ndarray:
    """Training interaction count per item, most popular first (the long tail curve)."""
    return np.sort(item_counts(context.train, context.num_items))[::-1]
