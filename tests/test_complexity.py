"""Params and MACs of CGD against the seed's table (2020 thop rules) and today's thop."""

import pytest
import torch
from torch import nn

from dmlbench.models.cgd import CGD
from dmlbench.reporting.complexity import count_flops, count_params, format_count

CLASSES = {"cars": 98, "sop": 11318, "inshop": 3997}
SEED_TABLE = {  # (params, MACs) as the CGD README prints them
    "resnet50": {"cars": ("26.86M", "10.64G"), "sop": ("49.85M", "10.69G"), "inshop": ("34.85M", "10.66G")},
    "resnext50": {"cars": ("26.33M", "10.84G"), "sop": ("49.32M", "10.89G"), "inshop": ("34.32M", "10.86G")},
}


def cgd(backbone: str, classes: int) -> CGD:
    return CGD(backbone, "SG", 1536, classes, pretrained=False)


@pytest.fixture(scope="module")
def r50_cars():
    return cgd("resnet50", 98)


def test_r50_cars_exact(r50_cars):
    assert count_params(r50_cars) == 26_858_658
    assert count_flops(r50_cars) == 10_644_006_912  # float32 sum, as thop 0.0.31 printed it
    assert count_flops(r50_cars, convention="seed_exact") == 10_644_007_424


@pytest.mark.parametrize("backbone", SEED_TABLE)
@pytest.mark.parametrize("dataset", CLASSES)
def test_params_table(backbone, dataset):
    assert format_count(count_params(cgd(backbone, CLASSES[dataset]))) == SEED_TABLE[backbone][dataset][0]


@pytest.mark.parametrize("backbone, dataset", [("resnet50", "sop"), ("resnet50", "inshop"),
                                               ("resnext50", "cars"), ("resnext50", "sop"),
                                               ("resnext50", "inshop")])
def test_flops_table(backbone, dataset):
    assert format_count(count_flops(cgd(backbone, CLASSES[dataset]))) == SEED_TABLE[backbone][dataset][1]


def test_current_thop_differs(r50_cars):
    macs = count_flops(r50_cars, convention="thop")
    assert macs == 10_678_398_976 and format_count(macs) == "10.68G"  # BatchNorm 4 x numel, Linear in x out


def test_profile_leaves_caller_model_untouched():
    model = CGD("resnet18", "SG", 12, 5, pretrained=False).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    count_flops(model, image_size=32)
    count_flops(model, image_size=32, convention="thop")
    assert not any("total_" in name for name, _ in model.named_buffers())
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert model.training and not model.trunk[1].training  # train() override still in force


def test_seed_rules_on_small_modules():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    conv = 4 * 8 * 8 * (3 * 9 + 1)
    bn = 2 * 4 * 8 * 8
    avg = 4 * (4 * 4 + 1)
    linear = 2 * (2 * 4 - 1 + 1)
    assert count_flops(model, image_size=8, convention="seed_exact") == conv + bn + avg + linear


def test_bad_convention():
    with pytest.raises(ValueError, match="seed, seed_exact, thop"):
        count_flops(nn.Linear(2, 2), convention="flops")


def test_format_count():
    assert format_count(26_858_658) == "26.86M" and format_count(10_644_006_912) == "10.64G"
    assert format_count(999) == "999.00B" and format_count(1500) == "1.50K"


def test_each_grid_cell_is_built_with_its_own_datasets_params():
    """A method section's per_dataset overrides reach the complexity grid: SOP's cell uses SOP's feature_dim."""
    from committed import committed_params
    from dmlbench.reporting.complexity import measure
    from dmlbench.pipeline.experiment import method_config

    params = committed_params()
    params["normsoftmax"]["per_dataset"] = {"sop": {"feature_dim": 64}}
    cells = {}
    for dataset, classes in (("car", 98), ("sop", 11318)):
        method, cfg = method_config(params, "normsoftmax", dataset)
        cells[dataset] = measure(method, cfg, "resnet18", dataset, classes, 32, 0)["params"]
    trunk = 11_176_512  # ResNet-18 without fc
    assert cells["car"] == trunk + 512 * 2048 + 2048 + 98 * 2048
    assert cells["sop"] == trunk + 512 * 64 + 64 + 11318 * 64


def test_per_dataset_overrides_are_validated():
    from committed import committed_params
    from dmlbench.errors import DmlbenchError
    from dmlbench.pipeline.experiment import method_config

    params = committed_params()
    params["normsoftmax"]["per_dataset"] = {"soop": {"feature_dim": 64}}
    with pytest.raises(DmlbenchError, match=r"unknown dataset normsoftmax.per_dataset.soop \(did you mean 'sop'\?\)"):
        method_config(params, "normsoftmax", "car")
    params["normsoftmax"]["per_dataset"] = {"sop": {"feature_dim": 0}}
    with pytest.raises(DmlbenchError, match="normsoftmax.feature_dim must be >= 1, got 0"):
        method_config(params, "normsoftmax", "car")  # checked even when another dataset runs


def test_meta_device_counts_equal_a_real_build():
    """measure() builds on the meta device: the same params and MACs as counting an allocated model."""
    from dmlbench.methods import METHODS
    from dmlbench.methods.lrec import LRECConfig
    from dmlbench.reporting.complexity import measure

    cfg = LRECConfig(ensemble_size=3, meta_classes=4, batch_size=4, lr=1e-4, epochs=1, lr_milestones=(0.5,),
                     lr_gamma=0.1, resize="shorter", train_resize=32, train_crop=32, test_resize=32, test_crop=32,
                     normalization="backbone")
    real = METHODS["lrec"].build_model(cfg, "resnet18", 10, False, 0)
    cell = measure(METHODS["lrec"], cfg, "resnet18", "car", 10, 32, 0)
    assert cell["params"] == count_params(real)
    assert cell["macs_seed"] == count_flops(real, 32, "seed")
    assert cell["macs_thop"] == count_flops(real, 32, "thop")
    cgd_cell = measure(METHODS["cgd"], _cgd_config(), "resnet18", "car", 5, 32, 0)
    cgd_real = CGD("resnet18", "SG", 12, 5, pretrained=False)
    assert (cgd_cell["params"], cgd_cell["macs_seed"]) == (count_params(cgd_real), count_flops(cgd_real, 32))


def _cgd_config():
    from dmlbench.methods.cgd import CGDConfig

    return CGDConfig(gd_config="SG", feature_dim=12, smoothing=0.1, temperature=0.5, margin=0.1, freeze_bn=False,
                     classes_per_batch=2, images_per_class=2, lr=1e-3, epochs=1, lr_milestones=(0.5,),
                     lr_gamma=0.1, train_resize=36, train_crop=32, test_resize=32)


def test_linear_stack_counts_as_its_linear_layers():
    """LREC's E heads (one batched matmul) count what E nn.Linear layers count, in both conventions."""
    from dmlbench.models.lrec_fused import LinearStack

    linears = [nn.Linear(6, 4) for _ in range(3)]
    stack = LinearStack.from_linears(linears)

    class Stacked(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool, self.heads = nn.AdaptiveAvgPool2d(1), stack

        def forward(self, x):  # 3 x 6 channels -> (1, 3, 6) -> (1, 3, 4)
            return self.heads(torch.flatten(self.pool(x), 1).view(1, 3, 6))

    class Separate(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool, self.heads = nn.AdaptiveAvgPool2d(1), nn.ModuleList(linears)

        def forward(self, x):
            pooled = torch.flatten(self.pool(x), 1).view(1, 3, 6)
            return torch.stack([head(pooled[:, e]) for e, head in enumerate(self.heads)], dim=1)

    class Probe(nn.Module):  # count_flops feeds 3-channel images: lift them to 18 channels first
        def __init__(self, inner):
            super().__init__()
            self.lift, self.inner = nn.Conv2d(3, 18, 1, bias=False), inner

        def forward(self, x):
            return self.inner(self.lift(x))

    for convention in ("seed_exact", "thop"):
        assert count_flops(Probe(Stacked()), 8, convention) == count_flops(Probe(Separate()), 8, convention)
    linear_seed = 3 * 4 * (2 * 6 - 1 + 1)
    lift = 18 * 8 * 8 * 3
    pool = 18 * (8 * 8 + 1)
    assert count_flops(Probe(Stacked()), 8, "seed_exact") == lift + pool + linear_seed
