"""The method registry: every distillation method registers itself once, here, with what the CLI, the
app, resume and the benchmark need to know about it.

A method is one function with one signature,

    distill(context, budget, config, on_event=None, should_stop=None, resume=None) -> SyntheticData

that gets the training split (never validation or test items) through `context`, a budget of n synthetic
sequences and its own config, reports typed events (`events.py`) and returns synthetic data that one
evaluator (`runs.evaluator.evaluate_synthetic`) trains fresh students on. `resume` is the checkpoint of S
to continue from (`resumable` methods only; None otherwise). A method that never asks for the expert says so
(`needs_expert=False`), and then no caller trains one for it. How to add one: docs/adding-a-method.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from ..core.config import from_dict
from ..core.registry import Registry
from ..core.synthetic import SyntheticData
from .events import Checkpoint, EventCallback, StopCheck
from .expert import DistillContext

Distiller = Callable[..., SyntheticData]


@dataclass(frozen=True)
class RunSettings:
    """What every method's config has: the random seed and the device ("auto" = CUDA when present)."""

    seed: int = 0
    device: str = "auto"


@dataclass(frozen=True)
class MethodSpec:
    name: str
    distill: Distiller
    config_class: type  # a frozen dataclass deriving from RunSettings
    help: str  # one sentence for the CLI's and the app's help
    resumable: bool = False  # checkpoints S while it works and can continue from a checkpoint
    loss_curves: bool = False  # reports StepEvents (the app draws them)
    in_default_bench: bool = True  # part of `bench` when no --methods are given
    # Uses the expert or its trajectory (`context.expert()`, `trajectory()`, `sequence_embeddings`). Without it
    # nobody trains the expert for this method's runs: minutes to hours on large data.
    needs_expert: bool = True

    def config(self, values: Mapping[str, Any] | None = None, **overrides: Any) -> Any:
        """This method's config from stored or shared values: fields it does not have are ignored."""
        return from_dict(self.config_class, values, **overrides)


_METHODS: Registry[MethodSpec] = Registry("method")


def register(spec: MethodSpec) -> MethodSpec:
    if not issubclass(spec.config_class, RunSettings):
        raise TypeError(f"{spec.name}: its config class must derive from RunSettings")
    return _METHODS.add(spec.name, spec)


def get_method(name: str) -> MethodSpec:
    return _METHODS.get(name)


def method_names() -> list[str]:
    """Every registered method, in registration order."""
    return _METHODS.names()


def all_methods() -> list[MethodSpec]:
    return _METHODS.entries()


def needs_expert(methods: Iterable[str]) -> bool:
    """Whether any of these registered methods uses the expert (names that are not methods, such as the
    full-data reference, need none)."""
    return any(_METHODS.get(m).needs_expert for m in methods if m in _METHODS.names())


def needs_labeller(methods: Iterable[str], values: Mapping[str, Any] | None = None) -> bool:
    """Whether any of these registered methods, with these shared settings, labels the data it hands out
    with the expert's refit (`context.labeller()`: trained once per dataset, after the expert, by whoever
    prepares the expert; its config says so with `uses_labeller`)."""
    return any(getattr(_METHODS.get(m).config(values), "uses_labeller", False) for m in methods if m in _METHODS.names())


def check_budget(context: DistillContext, budget: int) -> None:
    """A budget is a number of real-length synthetic sequences: at least 1, at most the usable ones."""
    available = len(context.usable)
    if budget < 1:
        raise ValueError(f"budget must be at least 1 sequence (got {budget}).")
    if budget > available:
        raise ValueError(f"budget {budget} is more than the {available} usable training sequences.")


def distill(context: DistillContext, method: str, budget: int, config: Any = None,
            on_event: EventCallback | None = None, should_stop: StopCheck | None = None,
            resume: Checkpoint | None = None) -> SyntheticData:
    """Run one registered method: its budget checked, its config defaulted, resume refused where unsupported."""
    spec = get_method(method)
    check_budget(context, budget)
    if resume is not None and not spec.resumable:
        resumable = [m.name for m in all_methods() if m.resumable]
        raise ValueError(f"only {' and '.join(resumable)} runs can resume from a checkpoint, not {method!r}.")
    if config is None:
        config = spec.config()
    elif not isinstance(config, spec.config_class):
        raise TypeError(f"{method} takes a {spec.config_class.__name__}, not a {type(config).__name__}")
    return spec.distill(context, budget, config, on_event, should_stop, resume)
