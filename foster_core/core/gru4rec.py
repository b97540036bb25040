"""Text-based GRU4Rec: a recurrent student over the same text-derived item embeddings as TextSASRec.

GRU4Rec (Hidasi et al., 2016, "Session-based recommendations with recurrent neural networks") reads a
sequence with a GRU and scores items against its hidden state. Here the item side is TextSASRec's (e_v =
A(t_v), tied input and output embeddings, hard or soft inputs), so the same synthetic data can train it;
only the sequence encoder differs: no attention and no position embeddings, order is in the recurrence.

Sequences arrive left-padded. A GRU started on padding would carry the padding's bias-driven state into the
first real item, so each row is shifted left (real items first), packed with its length, run, and shifted
back: the hidden state at a position depends only on the real items up to it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .model import ItemTextModel, ModelConfig


class TextGRU4Rec(ItemTextModel):
    def __init__(self, text_embeddings: torch.Tensor, cfg: ModelConfig | None = None):
        super().__init__(text_embeddings, cfg)
        self.drop = nn.Dropout(self.cfg.dropout)
        # `blocks` is the number of stacked GRU layers; dropout between them as in torch's GRU.
        self.gru = nn.GRU(self.cfg.hidden, self.cfg.hidden, num_layers=self.cfg.blocks, batch_first=True,
                          dropout=self.cfg.dropout if self.cfg.blocks > 1 else 0.0)
        self.final_norm = nn.LayerNorm(self.cfg.hidden)
        self.apply(self._init_weights)
        # The same logit scale as TextSASRec: LayerNormed h and e_v would start h . e_v with a spread of ~d.
        nn.init.constant_(self.final_norm.weight, self.cfg.hidden ** -0.5)

    def forward_tokens(self, tokens: torch.Tensor, timeline: torch.Tensor,
                       segments: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states (B, L, d) for input embeddings (B, L, d); timeline (B, L) marks the real positions,
        which are right-aligned (left padding). Packed rows (`segments`) run one sequence per row, so the
        recurrent state never carries one user into the next."""
        if segments is not None:
            return self.each_sequence_alone(tokens, segments)
        B, L, _ = tokens.shape
        lengths = timeline.sum(1)
        offset = (L - lengths).unsqueeze(1)  # where each row's first real item sits
        steps = torch.arange(L, device=tokens.device).unsqueeze(0)
        # Left-align: row b's j-th real item is at column offset_b + j.
        left = tokens.gather(1, (steps + offset).clamp(max=L - 1).unsqueeze(-1).expand_as(tokens))
        packed = pack_padded_sequence(self.drop(left), lengths.clamp(min=1).cpu(), batch_first=True,
                                      enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=L)
        # Right-align again: column t holds the state after real item t - offset_b.
        right = out.gather(1, (steps - offset).clamp(min=0).unsqueeze(-1).expand_as(out))
        mask = timeline.unsqueeze(-1).to(right.dtype)
        return self.final_norm(right) * mask
