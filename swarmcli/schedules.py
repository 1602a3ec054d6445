"""Learning-rate schedules, stepped once per epoch, equal to torch.optim.lr_scheduler's.

Schedule settings are shared by a batch and only the base lr differs per bee, so every schedule is
affine in the base lr: lr_t = a(t) * base_lr + c(t) (cyclic: base + (max_lr - base) * s(t);
cosine: eta_min + (base - eta_min) * (1 + cos(pi t / t_max)) / 2). `lr_for_epoch` evaluates it
for all bees at once in float64 and the engine hands the result to the optimizer's `set_lr` before
the step of that epoch.

| name        | torch equivalent                                                          |
|-------------|---------------------------------------------------------------------------|
| constant    | no scheduler                                                              |
| step        | StepLR(step_size, gamma)                                                  |
| exponential | ExponentialLR(gamma)                                                      |
| cosine      | CosineAnnealingLR(T_max=t_max or epochs, eta_min)                         |
| cyclic      | CyclicLR(base_lr=the bee's lr, max_lr, step_size_up, mode="triangular",   |
|             |          cycle_momentum=False)                                            |
| warmup      | LinearLR(start_factor, end_factor=1.0, total_iters=warmup_epochs)         |

torch's StepLR, ExponentialLR, CosineAnnealingLR and LinearLR update `group["lr"]` recursively
(lr_t from lr_{t-1}); this module uses their closed forms (torch's `_get_closed_form_lr`), which
agree with the recursion to about 1e-15 relative in float64 (one rounding per epoch), not bitwise.
CyclicLR is not recursive in torch and is computed with its exact formula.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from swarmcli.checks import check_choice, check_number
from swarmcli.choices import SCHEDULES
from swarmcli.errors import SwarmError

if TYPE_CHECKING:
    import torch

_INTS = {"step_size", "t_max", "step_size_up", "warmup_epochs"}
_RANGES = {"gamma": {"low": 0, "low_open": True}, "eta_min": {"low": 0},
           "max_lr": {"low": 0, "low_open": True},
           "start_factor": {"low": 0, "high": 1, "low_open": True}}


def resolve(name: str, params: dict | None = None, epochs: int | None = None) -> dict:
    """The schedule's parameters with defaults filled in, checked; keys of `params` the schedule
    does not use (other schedules' settings, `name`) are ignored, None means the default."""
    check_choice("schedule.name", name, SCHEDULES)
    params = params or {}
    out = {}
    for key, default in SCHEDULES[name].items():
        v = params.get(key)
        v = default if v is None else v
        if key == "t_max" and v is None:
            v = epochs
        if v is None:
            raise SwarmError(f"schedule.{key}={v!r} must be set for schedule {name}")
        if key in _INTS:
            check_number(f"schedule.{key}", v, low=1, integer=True)
        else:
            check_number(f"schedule.{key}", v)
            v = float(v)
            check_number(f"schedule.{key}", v, **_RANGES.get(key, {}))
        out[key] = v
    return out


def lr_for_epoch(name: str, params: dict | None, base_lr: torch.Tensor, epoch: int,
                 epochs: int | None = None) -> torch.Tensor:
    """Per-bee lr [bees] float64 for the optimizer step taken in epoch `epoch` (0-based): torch's
    `group["lr"]` at that step when the loop calls opt.step() then sched.step() once per epoch."""
    import torch  # here, not at the top: validation (resolve) must not pay for importing torch

    p = resolve(name, params, epochs)
    check_number("epoch", epoch, low=0, integer=True)
    return scheduled_lr(name, p, torch.as_tensor(base_lr).to(torch.float64), epoch)


def scheduled_lr(name: str, p: dict, base: torch.Tensor, epoch: int) -> torch.Tensor:
    """`lr_for_epoch` without the checks, for the training loop: `p` from `resolve`, `base`
    float64."""
    if name == "constant":
        return base.clone()
    if name == "step":
        return base * p["gamma"] ** (epoch // p["step_size"])
    if name == "exponential":
        return base * p["gamma"] ** epoch
    if name == "cosine":
        eta = p["eta_min"]
        return eta + (base - eta) * (1 + math.cos(math.pi * epoch / p["t_max"])) / 2
    if name == "cyclic":  # CyclicLR.get_lr, step_size_down = step_size_up, scale_fn = 1
        total = 2.0 * p["step_size_up"]
        ratio = p["step_size_up"] / total
        cycle = math.floor(1 + epoch / total)
        x = 1.0 + epoch / total - cycle
        scale = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
        return base + (p["max_lr"] - base) * scale
    # warmup
    sf, n = p["start_factor"], p["warmup_epochs"]
    return base * (sf + (1.0 - sf) * min(n, epoch) / n)
