"""UnifiedProxy's proxies start as unit rows (the seed lineage's init), so AdamP at the proxies' lr 1e-2 turns them
as fast as the seed's: a row's turn per step is ~lr x sqrt(dim) / |row|, and unnormalised Gaussian rows
(|row| ~ sqrt(512) = 22.6) would turn ~20x slower although the forward normalises them."""

import math

import torch
import torch.nn.functional as F

from dmlbench.losses.proxy_anchor import proxy_anchor_loss
from dmlbench.methods.unifiedproxy import ADAMP, AdamPAnyLayout
from dmlbench.models.unifiedproxy import UnifiedProxy, unit_gaussian_rows

CLASSES, DIM, BATCH, LR = 98, 512, 64, 1e-2  # the seed on CARS196: 98 proxies of 512, batch 64, proxy lr 1e-2


def model_proxies(seed: int = 0) -> torch.Tensor:
    model = UnifiedProxy("resnet18", DIM, CLASSES, pretrained=False, freeze_bn=True, seed=seed)
    return model.proxies.detach().double()


def turned_degrees(start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """Per row, the angle between its start and end directions."""
    cos = (F.normalize(start, dim=1) * F.normalize(end, dim=1)).sum(dim=1).clamp(-1, 1)
    return torch.rad2deg(torch.acos(cos))


def adamp_steps(start: torch.Tensor, steps: int, seed: int = 1) -> torch.Tensor:
    """The proxies after ``steps`` AdamP steps (the method's settings) on the proxy-anchor loss of clustered unit
    embeddings (98 class centres plus noise), in float64; the embeddings are fixed data, not trained."""
    proxies = torch.nn.Parameter(start.clone())
    optimizer = AdamPAnyLayout([{"params": [proxies], "lr": LR}], **ADAMP)
    generator = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(CLASSES, DIM, generator=generator, dtype=torch.float64), dim=1)
    for _ in range(steps):
        labels = torch.randint(0, CLASSES, (BATCH,), generator=generator)
        noise = torch.randn(BATCH, DIM, generator=generator, dtype=torch.float64) / math.sqrt(DIM)
        embeddings = F.normalize(centres[labels] + noise, dim=1)
        loss = proxy_anchor_loss(embeddings @ F.normalize(proxies, dim=1).T, labels, 32.0, 0.1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return proxies.detach()


def test_the_models_proxies_are_the_seeds_unit_rows():
    seed_init = F.normalize(torch.randn(CLASSES, DIM, generator=torch.Generator().manual_seed(0)), dim=-1)
    assert torch.equal(unit_gaussian_rows(CLASSES, DIM, 0), seed_init)
    assert torch.equal(model_proxies(0), seed_init.double())


def test_the_first_adamp_step_turns_a_row_by_atan_of_lr_sqrt_dim_over_its_norm():
    # Adam's first step is lr x g / (|g| + eps) per coordinate, i.e. ~lr x sign(g), and AdamP removes its radial
    # part (the proxies are scale-invariant), so each row moves ~lr x sqrt(dim) = 0.226 along the sphere: a unit
    # row turns atan(0.226) = 12.75 degrees, a row of norm r by atan(0.226 / r). Spelled out per row below.
    means = []
    for start in (model_proxies(), torch.randn(CLASSES, DIM, generator=torch.Generator().manual_seed(0),
                                               dtype=torch.float64)):
        proxies = torch.nn.Parameter(start.clone())
        labels = torch.arange(BATCH) % CLASSES
        embeddings = F.normalize(torch.randn(BATCH, DIM, generator=torch.Generator().manual_seed(2),
                                             dtype=torch.float64), dim=1)
        proxy_anchor_loss(embeddings @ F.normalize(proxies, dim=1).T, labels, 32.0, 0.1).backward()
        grad = proxies.grad.clone()
        optimizer = AdamPAnyLayout([{"params": [proxies], "lr": LR}], **ADAMP)
        optimizer.step()
        update = grad / (grad.abs() + 1e-8)  # Adam's bias-corrected first step (eps 1e-8), without lr
        unit = F.normalize(start, dim=1)
        tangent = update - (update * unit).sum(dim=1, keepdim=True) * unit
        expected = torch.rad2deg(torch.atan(LR * tangent.norm(dim=1) / start.norm(dim=1)))
        # float64 on both sides, two routes (AdamP's step and the formula above): they agree to rounding (~1e-12
        # degrees); 1e-9 leaves room and is still 3e7 x below the 0.03-degree band the assert below uses.
        torch.testing.assert_close(turned_degrees(start, proxies.detach()), expected, rtol=1e-9, atol=1e-9)
        means.append(expected.mean().item())
    # |tangent| ~ sqrt(512) (every coordinate ~ +-1, less the radial part); Gaussian rows' norms ~ sqrt(512) +- 3 %
    unit_step, gaussian_step = math.degrees(math.atan(LR * math.sqrt(DIM))), math.degrees(math.atan(LR))
    assert (round(unit_step, 2), round(gaussian_step, 3)) == (12.75, 0.573)
    # Statistical bands, not rounding: 0.1 degree is 0.8 % of 12.75 and 0.03 is 5 % of 0.573, room for the rows'
    # spread (+-3 % each, averaged over 98 rows) and the radial part; the other init's mean is outside each band.
    assert abs(means[0] - unit_step) < 0.1 and abs(means[1] - gaussian_step) < 0.03


def test_unit_rows_turn_like_the_seeds_and_unnormalised_rows_would_lag():
    # Measured (float64, this file's data, 100 steps): unit rows turn 89.6 degrees on average, Gaussian rows of
    # norm ~22.6 turn 16.9. The turn rate is ~1/|row| and AdamP keeps |row| nearly fixed (its projection drops the
    # radial part of each step; unit rows grow to ~1.13), so unit rows take ~20x larger angular steps until their
    # random-walk-like turn saturates near 90 degrees, while the Gaussian rows' ~0.57 degrees per step (at most
    # 57 over 100 steps, straight) stays far from it. Bounds: unit rows most of the way to 90 (> 75), Gaussian
    # rows below 30 and under a third of the unit rows' turn.
    unit = model_proxies()
    gaussian = torch.randn(CLASSES, DIM, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    unit_turn = turned_degrees(unit, adamp_steps(unit, 100)).mean().item()
    gaussian_turn = turned_degrees(gaussian, adamp_steps(gaussian, 100)).mean().item()
    assert unit_turn > 75
    assert gaussian_turn < 30 and gaussian_turn < unit_turn / 3
