"""Sharpness-Aware Minimisation (Foret et al., ICLR 2021) around any torch optimiser.

SAM minimises the loss at the worst point of a small ball around the weights. Each update takes two
forward-backward passes: at ``w`` to get the gradient ``g``, then at ``w + e`` with ``e = rho * g / ||g||``
(the first-order solution of the inner maximisation); the base optimiser then steps from ``w`` using the
gradient computed at ``w + e``.

>>> model = torch.nn.Linear(2, 1)
>>> sam = SAM(torch.optim.Adam(model.parameters(), lr=1e-3), rho=0.05)
>>> model(torch.ones(1, 2)).sum().backward(); sam.first_step()
>>> model(torch.ones(1, 2)).sum().backward(); sam.second_step()
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class SAM:
    """Wraps a base optimiser (e.g. Adam); ``first_step`` perturbs the weights, ``second_step`` restores them
    and lets the base optimiser step with the perturbed gradient. Both zero the gradients by default.
    """

    def __init__(self, base_optimizer: torch.optim.Optimizer, rho: float = 0.05) -> None:
        if rho <= 0:
            raise ValueError(f"rho must be positive, got {rho}")
        self.base_optimizer = base_optimizer
        self.rho = rho
        self._perturbations: dict[torch.Tensor, torch.Tensor] = {}

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.base_optimizer.param_groups

    def _params_with_grad(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"] if p.grad is not None]

    @torch.no_grad()
    def first_step(self, zero_grad: bool = True) -> None:
        """Move every weight to ``w + rho * g / ||g||`` (global L2 norm over all parameters)."""
        params = self._params_with_grad()
        if not params:
            return
        norm = torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(p.grad.float()) for p in params])
        )
        scale = self.rho / (norm + 1e-12)
        for p in params:
            e = (p.grad.float() * scale.to(p.device)).to(p.dtype)
            p.add_(e)
            self._perturbations[p] = e
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = True) -> None:
        """Return to ``w`` and apply the base optimiser's update with the gradient taken at ``w + e``."""
        for p, e in self._perturbations.items():
            p.sub_(e)
        self._perturbations.clear()
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:
        """One full SAM update. The gradient at the current weights must already be in ``.grad``;
        ``closure`` runs forward and backward again (at the perturbed weights) and returns the loss.
        """
        self.first_step(zero_grad=True)
        with torch.enable_grad():
            loss = closure()
        self.second_step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """The base optimiser's state (SAM keeps none between updates) plus ``rho``."""
        return {"base": self.base_optimizer.state_dict(), "rho": self.rho}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base_optimizer.load_state_dict(state["base"])
        self.rho = float(state["rho"])
