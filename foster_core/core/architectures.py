"""The student architectures: every model that can be trained on distilled (or full) data, by name.

Each registers once, here, with its model class and the ModelConfig fields where it differs from the
expert's config; the CLI (`--students`), the evaluator, the benchmark and the app read this registry and
name no architecture themselves. A model class takes (text_embeddings, ModelConfig) and has the
`ItemTextModel` interface (hard and soft inputs, item embeddings, scores), so one training loop and one
evaluator serve all of them. The first, "sasrec", is the expert's own architecture and the default
student.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from .gru4rec import TextGRU4Rec
from .id_sasrec import IdSASRec
from .model import ItemTextModel, ModelConfig, TextSASRec
from .registry import Registry


@dataclass(frozen=True)
class Architecture:
    name: str
    model_class: type[ItemTextModel]
    overrides: tuple[tuple[str, object], ...]  # (ModelConfig field, value) where it differs from the expert's
    help: str  # one sentence for the CLI's and the app's help

    def model_cfg(self, base: ModelConfig) -> ModelConfig:
        """This architecture's config: the expert's (`base`, e.g. its max_len) with its own fields."""
        return replace(base, **dict(self.overrides))

    def build(self, text_embeddings: torch.Tensor, base: ModelConfig) -> ItemTextModel:
        return self.model_class(text_embeddings, self.model_cfg(base))


_ARCHITECTURES: Registry[Architecture] = Registry("student architecture")


def register(architecture: Architecture) -> Architecture:
    return _ARCHITECTURES.add(architecture.name, architecture)


def get_architecture(name: str) -> Architecture:
    return _ARCHITECTURES.get(name)


def architecture_names() -> list[str]:
    """Every registered architecture, the default first."""
    return _ARCHITECTURES.names()


def architecture_rank(name: str) -> int:
    """An architecture's place in the registry, for sorting tables (a name this version lacks goes last)."""
    names = _ARCHITECTURES.names()
    return names.index(name) if name in names else len(names)


DEFAULT_ARCHITECTURE = register(Architecture(
    "sasrec", TextSASRec, (), "the expert's own architecture: text-SASRec, hidden 64, 2 blocks")).name
register(Architecture("sasrec-large", TextSASRec, (("hidden", 128), ("blocks", 4)),
                      "a wider, deeper text-SASRec: hidden 128, 4 blocks"))
register(Architecture("gru4rec", TextGRU4Rec, (("blocks", 1),),
                      "a GRU4Rec-style recurrent model (one GRU layer) over the same text-derived item embeddings"))
register(Architecture("id-sasrec", IdSASRec, (),
                      "SASRec with item embeddings learned from ids, not texts; soft inputs are over ids"))
