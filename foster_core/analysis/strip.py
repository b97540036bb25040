"""A synthetic sequence at a glance: each real position's most probable input items and their probabilities, in
long form for one compact chart (positions along x, the top items' probabilities stacked), the rest of each
position's mass in one slice so every bar shows how decisive that position is."""

from __future__ import annotations

import pandas as pd

from ..core.synthetic import SyntheticData
from .projection import HOVER_WIDTH, wrap_for_hover

REST = "rest"  # the rank label of a position's mass outside its top items
STRIP_COLUMNS = ["position", "rank", "item", "text", "p"]


def rank_label(rank: int) -> str:
    """'1st', '2nd', '3rd', '4th', ...: how the chart's legend names the top items of a position."""
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(rank if rank < 20 else rank % 10, "th")
    return f"{rank}{suffix}"


def position_strip(synthetic: SyntheticData, j: int, texts: list[str], k: int = 3,
                   text_width: int = HOVER_WIDTH) -> pd.DataFrame:
    """Synthetic sequence j as rows (position, rank, item, text, p): its k most probable input items at each real
    position (positions numbered from 0 as in the position table), then one `rest` row with the remaining mass
    (item -1, no text). Items with probability 0 are left out; texts are whole, for hover labels: HTML-escaped
    and wrapped between words with <br> at `text_width` characters."""
    items, probs = synthetic.top_items("input", k)
    rows = []
    for position, t in enumerate(synthetic.mask[j].nonzero().flatten().tolist()):
        kept = 0.0
        for rank, (item, p) in enumerate(zip(items[j, t].tolist(), probs[j, t].tolist()), start=1):
            if p <= 0:
                continue
            rows.append({"position": position, "rank": rank_label(rank), "item": int(item),
                         "text": wrap_for_hover(texts[int(item)], text_width), "p": float(p)})
            kept += float(p)
        # Rounding can make the top items sum to a hair over 1; a negative slice would draw below the axis.
        rows.append({"position": position, "rank": REST, "item": -1, "text": "", "p": max(0.0, 1.0 - kept)})
    return pd.DataFrame(rows, columns=STRIP_COLUMNS)
