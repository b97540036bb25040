"""`bptt`: bi-level distillation by back-propagation through an unrolled inner loop (TD3/Farzi-style).

Each step unrolls `unroll_steps` SGD steps on S from a trajectory checkpoint and back-propagates the
real loss of the unrolled model into S. Its memory grows with the unroll; it is kept to measure exactly
that against FOSTER's first-order step (benchmarks/step_cost.py), not as a recommended method.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..core.model import TextSASRec
from ..core.runtime import resolve_device, seed_everything
from ..core.synthetic import SyntheticData
from ..core.training import item_subset, load_checkpoint, next_item_pairs
from .events import Checkpoint, EventCallback, StepEvent, StopCheck
from .expert import DistillContext
from .registry import MethodSpec, register
from .sparse import SoftStartConfig, real_loss, starting_point, synthetic_loss
from .teacher import handed_out


@dataclass(frozen=True)
class BpttConfig(SoftStartConfig):
    unroll_steps: int = 5  # [K] inner steps back-propagated through
    unroll_lr: float = 0.01  # plain SGD inside the unroll

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.unroll_steps < 1:
            raise ValueError("unroll_steps must be at least 1")


class _LossWithParams(torch.nn.Module):
    """Lets torch.func.functional_call run a loss of `net` under substituted (unrolled) parameters."""

    def __init__(self, net: TextSASRec):
        super().__init__()
        self.net = net

    def forward(self, loss_fn: Callable, *args: object) -> torch.Tensor:
        subset = args[-1]
        return loss_fn(self.net, *args, self.net.item_embeddings(subset))


def _with_params(net: TextSASRec, params: dict[str, torch.Tensor], loss_fn: Callable, *args: object) -> torch.Tensor:
    wrapper = _LossWithParams(net)
    return functional_call(wrapper, {f"net.{k}": v for k, v in params.items()}, (loss_fn, *args), strict=False)


def distill_bptt(context: DistillContext, budget: int, config: BpttConfig, on_event: EventCallback | None = None,
                 should_stop: StopCheck | None = None, resume: Checkpoint | None = None) -> SyntheticData:
    """Unrolled bi-level updates of S. `resume` continues after a checkpoint's step (the optimiser starts afresh)."""
    generator = seed_everything(config.seed)
    device = resolve_device(config.device)
    first_step, syn = starting_point(context, budget, config, resume)
    syn = syn.to(device)
    syn_params = list(syn.parameters())
    opt_syn = torch.optim.Adam(syn_params, lr=config.synthetic_lr)
    trajectory = context.trajectory()
    net = context.new_model().to(device).train()
    inputs, targets = (torch.from_numpy(a) for a in next_item_pairs(context.train, context.model_cfg.max_len))
    started = time.perf_counter()
    for step in range(first_step, config.steps + 1):
        if should_stop and should_stop():
            break
        load_checkpoint(net, trajectory[int(torch.randint(len(trajectory), (1,), generator=generator))])
        params = {k: v.detach().requires_grad_(True) for k, v in net.named_parameters()}
        batch = torch.randint(len(inputs), (config.real_batch_size,), generator=generator)
        seqs, next_items = inputs[batch].to(device), targets[batch].to(device)
        subset = item_subset(context.num_items, config.subset_size, generator,
                             next_items, syn.input_items, syn.label_items).to(device)
        # Second-order gradients need the plain attention kernel (the fused ones have no double backward).
        with sdpa_kernel(SDPBackend.MATH):
            for _ in range(config.unroll_steps):
                loss = _with_params(net, params, synthetic_loss, syn, subset)
                grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
                params = {k: v - config.unroll_lr * g for (k, v), g in zip(params.items(), grads)}
            outer = _with_params(net, params, real_loss, seqs, next_items, subset)
            opt_syn.zero_grad(set_to_none=True)
            outer.backward(inputs=syn_params)
        opt_syn.step()
        if on_event and (step % config.log_every == 0 or step == config.steps):
            on_event(StepEvent(step, config.steps, time.perf_counter() - started,
                               {"loss_real": outer.item(), "loss_syn": loss.item()}, int(len(subset))))
        if on_event and config.checkpoint_every and step % config.checkpoint_every == 0:
            on_event(Checkpoint(step, syn.to_data()))
    return handed_out(context, syn.to_data(), config)


register(MethodSpec("bptt", distill_bptt, BpttConfig, resumable=True, loss_curves=True, in_default_bench=False,
                    help="unrolled bi-level optimisation (back-propagation through K inner steps), kept to compare "
                         "time and memory per step"))
