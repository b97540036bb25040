"""Text-based SASRec: causal self-attention over item embeddings derived from item texts.

Item v's embedding is e_v = A(t_v): a trainable adapter applied to its frozen text embedding t_v.
The same e_v is the input token and the output scoring vector (embedding tying), so the score of
item v after a sequence is h . e_v, for every item or for any subset of items.

Inputs come in two kinds with one code path after the embedding:
- hard: item ids (B, L), left-padded with PAD_ID = -1;
- soft: a probability distribution over some item table per position (B, L, K), which becomes the
  expected item embedding sum_v p(v) e_v. A one-hot soft input equals the hard input.

Padded positions never produce NaN: each query may always attend to itself, and a timeline mask
zeroes padded positions after every block (the original SASRec recipe), instead of a key-padding
mask that leaves fully-masked rows.

A packed row holds several real sequences end to end. With `segments` (B, L), which sequence of its row
each position belongs to (1, 2, ... from the left; 0 = padding), every position is encoded as if its
sequence sat alone in a left-padded row: it attends only within its sequence, and its position embedding
counts back from that sequence's last item. Without them a student reads each user's items as the
continuation of the previous user's (docs/distillation-notes.md, 2026-12-03, packed rows as sequences).

`ItemTextModel` holds the item side every student architecture shares; `TextSASRec` adds SASRec's
blocks. The other students (a GRU4Rec, an ID-based SASRec) live in their own files and are listed, by
name, in `architectures.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .data import PAD_ID


def segment_ends(segments: torch.Tensor) -> torch.Tensor:
    """(B, L): the column of the last position of each position's sequence. `segments` (B, L) must be
    non-decreasing along each row (left padding 0, then sequences 1, 2, ...), as packed rows are."""
    segments = segments.contiguous()
    return torch.searchsorted(segments, segments, right=True) - 1


@dataclass(frozen=True)
class ModelConfig:
    hidden: int = 64
    blocks: int = 2
    heads: int = 2
    dropout: float = 0.2
    max_len: int = 50  # positions; longer inputs keep their most recent items
    adapter_layers: int = 2  # 1 = Linear + LayerNorm; 2 = a small MLP before the LayerNorm


class TextAdapter(nn.Module):
    def __init__(self, text_dim: int, hidden: int, layers: int):
        super().__init__()
        if layers == 1:
            self.net = nn.Linear(text_dim, hidden)
        else:
            self.net = nn.Sequential(nn.Linear(text_dim, 2 * hidden), nn.GELU(), nn.Linear(2 * hidden, hidden))
        self.norm = nn.LayerNorm(hidden)

    def forward(self, text_embeddings: torch.Tensor) -> torch.Tensor:
        return self.norm(self.net(text_embeddings))


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.heads = cfg.heads
        self.dropout = cfg.dropout
        self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden)
        self.proj = nn.Linear(cfg.hidden, cfg.hidden)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """(B, L, D), or with `last_only` (B, 1, D): only the last position asks, every position answers."""
        B, L, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=2)
        if last_only:
            q, attn_mask = q[:, -1:], attn_mask[..., -1:, :]
        q, k, v = (t.view(B, t.shape[1], self.heads, D // self.heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.proj(y.transpose(1, 2).reshape(B, q.shape[2], D))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.hidden)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.hidden)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.hidden, 4 * cfg.hidden), nn.GELU(), nn.Linear(4 * cfg.hidden, cfg.hidden), nn.Dropout(cfg.dropout)
        )
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor, timeline: torch.Tensor,
                last_only: bool = False) -> torch.Tensor:
        """(B, L, d), or with `last_only` only the last position's output (B, 1, d)."""
        attended = self.drop(self.attn(self.ln1(x), attn_mask, last_only))
        if last_only:
            x, timeline = x[:, -1:], timeline[:, -1:]
        x = x + attended
        x = x + self.mlp(self.ln2(x))
        return x * timeline


class ItemTextModel(nn.Module):
    """What every student architecture shares (core/architectures.py): item v's embedding e_v = A(t_v)
    from its frozen text embedding t_v, used as the input token and as the output scoring vector, hard
    and soft inputs, and scoring. A subclass adds its sequence encoder, `forward_tokens`."""

    def __init__(self, text_embeddings: torch.Tensor, cfg: ModelConfig | None = None):
        super().__init__()
        self.cfg = cfg or ModelConfig()
        # Frozen text embeddings travel with the model but are not parameters (and not in checkpoints).
        self.register_buffer("text_embeddings", text_embeddings.float(), persistent=False)
        self.adapter = self.item_tower(text_embeddings)

    def item_tower(self, text_embeddings: torch.Tensor) -> nn.Module:
        """The module that turns an item into its embedding (here: its text through the adapter)."""
        return TextAdapter(text_embeddings.shape[1], self.cfg.hidden, self.cfg.adapter_layers)

    @property
    def num_items(self) -> int:
        return self.text_embeddings.shape[0]

    def replace_text_embeddings(self, text_embeddings: torch.Tensor) -> None:
        """Swap in a new text table of the same shape (an encoder being fine-tuned has moved), on the model's device."""
        if tuple(text_embeddings.shape) != tuple(self.text_embeddings.shape):
            raise ValueError(f"text embeddings {tuple(text_embeddings.shape)} must keep the shape "
                             f"{tuple(self.text_embeddings.shape)}")
        self.text_embeddings = text_embeddings.detach().float().to(self.text_embeddings.device)

    def item_embeddings(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """(M, d) for the whole catalogue, or (N, d) for the given item ids."""
        text = self.text_embeddings if items is None else self.text_embeddings[items]
        return self.adapter(text)

    def forward(self, seqs: torch.Tensor, item_table: torch.Tensor | None = None,
                table_items: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states (B, L, d) for hard item ids (B, L), left-padded with PAD_ID.

        By default the inputs are looked up in the whole catalogue's embeddings (O(M) per call). With
        `item_table` (K, d) = embeddings of the sorted ids `table_items` (K,), which must hold every id in
        `seqs`, they are looked up there instead: O(K), for item-subset steps on very large catalogues.
        An `item_table` without `table_items` is the whole catalogue's, computed once by the caller (an
        evaluation pass reuses one table for every batch).
        """
        return self.forward_tokens(*self._tokens(seqs, item_table, table_items))

    def last_hidden(self, seqs: torch.Tensor, item_table: torch.Tensor | None = None) -> torch.Tensor:
        """(B, d): the hidden state after each sequence's last item, all that scoring its next item needs.
        Equal to `forward(seqs, item_table)[:, -1]`; an architecture may compute it with less work."""
        return self(seqs, item_table=item_table)[:, -1]

    def _tokens(self, seqs: torch.Tensor, item_table: torch.Tensor | None,
                table_items: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The input embeddings (B, L, d) of hard ids, and their timeline (B, L) of real positions."""
        seqs = seqs[:, -self.cfg.max_len :]
        timeline = seqs != PAD_ID
        if item_table is None or table_items is None:
            table = self.item_embeddings() if item_table is None else item_table
            return table[seqs.clamp(min=0)], timeline
        positions = torch.searchsorted(table_items, seqs.clamp(min=0)).clamp(max=len(table_items) - 1)
        if not bool((table_items[positions] == seqs)[timeline].all()):
            raise ValueError("forward: some input ids are missing from table_items")
        return item_table[positions], timeline

    def forward_soft(self, probs: torch.Tensor, item_table: torch.Tensor, timeline: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states (B, L, d) for soft inputs: probs (B, L, K) over the rows of item_table (K, d)."""
        probs = probs[:, -self.cfg.max_len :]
        if timeline is None:
            timeline = torch.ones(probs.shape[:2], dtype=torch.bool, device=probs.device)
        return self.forward_tokens(probs @ item_table, timeline[:, -self.cfg.max_len :])

    def score(self, hidden: torch.Tensor, items: torch.Tensor | None = None, item_table: torch.Tensor | None = None) -> torch.Tensor:
        """h . e_v for all items, for the ids in `items`, or for a precomputed item_table."""
        if item_table is None:
            item_table = self.item_embeddings(items)
        return hidden @ item_table.T

    def forward_tokens(self, tokens: torch.Tensor, timeline: torch.Tensor,
                       segments: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states (B, L, d) for ready-made input embeddings (B, L, d); timeline (B, L) marks real
        positions; `segments` (B, L), if given, which real sequence of a packed row each position is."""
        raise NotImplementedError

    def each_sequence_alone(self, tokens: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
        """`forward_tokens` of packed rows, computed by moving each real sequence into a left-padded row of
        its own and back: exact for any encoder, at the cost of one row per sequence. For architectures
        that cannot keep sequences apart inside one row (a recurrent state runs on across them)."""
        B, L, _ = tokens.shape
        real = segments > 0
        rows = torch.unique(torch.arange(B, device=tokens.device)[:, None] * (L + 1) + segments,
                            return_inverse=True)[1]  # one new row per (row, sequence); padding shares one
        column = L - 1 - (segment_ends(segments) - torch.arange(L, device=tokens.device))
        alone = tokens.new_zeros(int(rows.max()) + 1, L, tokens.shape[-1])
        alone[rows[real], column[real]] = tokens[real]
        timeline = torch.zeros(alone.shape[:2], dtype=torch.bool, device=tokens.device)
        timeline[rows[real], column[real]] = True
        hidden = self.forward_tokens(alone, timeline)
        out = hidden.new_zeros(B, L, hidden.shape[-1])
        out[real] = hidden[rows[real], column[real]]
        return out

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)


class TextSASRec(ItemTextModel):
    """The expert's architecture: SASRec's causal self-attention blocks over the item tokens."""

    def __init__(self, text_embeddings: torch.Tensor, cfg: ModelConfig | None = None):
        super().__init__(text_embeddings, cfg)
        self.position = nn.Embedding(self.cfg.max_len, self.cfg.hidden)
        self.drop = nn.Dropout(self.cfg.dropout)
        self.blocks = nn.ModuleList(Block(self.cfg) for _ in range(self.cfg.blocks))
        self.final_norm = nn.LayerNorm(self.cfg.hidden)
        self.apply(self._init_weights)
        # LayerNormed h and e_v have norm ~sqrt(d), so h . e_v starts with a spread of ~d and a near-one-hot
        # softmax that learns slowly; a small final gain starts the logits near unit scale, and it is trainable.
        nn.init.constant_(self.final_norm.weight, self.cfg.hidden ** -0.5)

    def last_hidden(self, seqs: torch.Tensor, item_table: torch.Tensor | None = None) -> torch.Tensor:
        # The last block runs for the last position alone: in an evaluation pass that saves about a quarter
        # of the model's work (its attention queries, projection and feed-forward for every other position).
        return self.forward_tokens(*self._tokens(seqs, item_table, None), last_only=True)[:, -1]

    def forward_tokens(self, tokens: torch.Tensor, timeline: torch.Tensor, segments: torch.Tensor | None = None,
                       last_only: bool = False) -> torch.Tensor:
        """Hidden states for ready-made input embeddings (B, L, d); timeline (B, L) marks real positions;
        `segments` keeps the sequences of packed rows apart (module docstring). With `last_only`, the last
        position's alone (B, 1, d)."""
        L = tokens.shape[1]
        mask = timeline.unsqueeze(-1).to(tokens.dtype)
        steps = torch.arange(L, device=tokens.device)
        # A sequence's last item sits at position max_len - 1, as in a row of its own.
        ends = L - 1 if segments is None else segment_ends(segments)
        positions = (self.cfg.max_len - 1 - (ends - steps)).clamp(min=0)
        x = self.drop((tokens + self.position(positions)) * mask) * mask
        causal = torch.ones(L, L, dtype=torch.bool, device=tokens.device).tril()
        eye = torch.eye(L, dtype=torch.bool, device=tokens.device)
        # A query sees earlier real positions (of its own sequence) and always itself, so no row of the
        # mask is empty.
        attn_mask = causal & timeline[:, None, :]
        if segments is not None:
            attn_mask = attn_mask & (segments[:, :, None] == segments[:, None, :])
        attn_mask = attn_mask | eye
        attn_mask = attn_mask.unsqueeze(1)
        for i, block in enumerate(self.blocks):
            last = last_only and i == len(self.blocks) - 1
            x = block(x, attn_mask, mask, last)
        return self.final_norm(x) * (mask[:, -1:] if last_only else mask)
