"""ID-based SASRec: SASRec's blocks over item embeddings learned from item ids, not derived from texts.

The classic SASRec (Kang & McAuley, 2018) owns one trainable embedding per item id. It is the student that
knows nothing of the texts: whatever it learns about an item comes from the sequences it trains on, so
it asks whether distilled data carries knowledge of the items themselves or only through their texts.
Soft inputs are distributions over ids, and become the expected id embedding, as for the text models.

A LayerNorm follows the id embedding so that e_v has the scale the text adapter gives (and the final gain
of TextSASRec keeps logits near unit scale at the start).
"""

from __future__ import annotations

import torch
from torch import nn

from .model import TextSASRec


class ItemIdEmbedding(nn.Module):
    def __init__(self, num_items: int, hidden: int):
        super().__init__()
        self.embedding = nn.Embedding(num_items, hidden)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self.norm(self.embedding(items))


class IdSASRec(TextSASRec):
    """TextSASRec with the text adapter replaced by an id embedding table; the texts are not read (the
    text table is kept only for the catalogue's size, which every model reports as `num_items`)."""

    def item_tower(self, text_embeddings: torch.Tensor) -> nn.Module:
        return ItemIdEmbedding(text_embeddings.shape[0], self.cfg.hidden)

    def item_embeddings(self, items: torch.Tensor | None = None) -> torch.Tensor:
        if items is None:
            items = torch.arange(self.num_items, device=self.text_embeddings.device)
        return self.adapter(items)
