"""SAM: the perturbation has norm rho, the update is Adam's with the perturbed gradient, and it learns."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from faceaffect.train.sam import SAM


def _problem() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(64, 5)
    y = (x @ torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0]) > 0).long()
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2)), x, y


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_first_step_moves_rho_along_the_gradient_and_second_step_is_adam_at_the_perturbed_point() -> None:
    model, x, y = _problem()
    reference = copy.deepcopy(model)
    sam = SAM(torch.optim.Adam(model.parameters(), lr=0.01), rho=0.05)
    start = _flat(model)
    nn.functional.cross_entropy(model(x), y).backward()
    gradient = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    sam.first_step()
    moved = _flat(model) - start
    assert moved.norm().item() == pytest.approx(0.05, rel=1e-5)
    torch.testing.assert_close(moved, 0.05 * gradient / gradient.norm())
    assert all(p.grad is None for p in model.parameters())
    nn.functional.cross_entropy(model(x), y).backward()
    perturbed_grads = [p.grad.clone() for p in model.parameters()]
    sam.second_step()

    adam = torch.optim.Adam(reference.parameters(), lr=0.01)
    for p, g in zip(reference.parameters(), perturbed_grads, strict=True):
        p.grad = g
    adam.step()
    torch.testing.assert_close(_flat(model), _flat(reference))
    assert not torch.equal(_flat(model), start)


def test_sam_reduces_the_loss_and_its_state_round_trips() -> None:
    model, x, y = _problem()
    sam = SAM(torch.optim.Adam(model.parameters(), lr=0.05), rho=0.05)

    def loss() -> torch.Tensor:
        value = nn.functional.cross_entropy(model(x), y)
        value.backward()
        return value

    first = loss().item()
    for _ in range(60):
        sam.step(loss)
        loss()
    assert nn.functional.cross_entropy(model(x), y).item() < 0.5 * first
    restored = SAM(torch.optim.Adam(model.parameters(), lr=1.0), rho=0.2)
    restored.load_state_dict(sam.state_dict())
    assert restored.rho == 0.05 and restored.param_groups[0]["lr"] == 0.05
    with pytest.raises(ValueError, match="rho"):
        SAM(torch.optim.Adam(model.parameters()), rho=0.0)
