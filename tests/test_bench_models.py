"""The model registry: every model trains on a tiny batch, the normalizations are what they claim,
input-size floors are real, and ImageNet weights load through torchvision's own cache path."""

from __future__ import annotations

import sys
import urllib.error
from pathlib import Path

import pytest
import torch
from torch import nn

from benchmark.baselines import BatchChannelNorm2d, WSConv2d, count_macs, load_pretrained, weights_file
from benchmark.registry import create_model, get_spec, list_models
from lrfp.errors import BenchError

CONFIGS = [(name, norm) for name in list_models() for norm in (get_spec(name).norms or (None,))]


def test_registry_holds_the_six_baselines():
    assert list_models() == ["model1", "model2", "model3", "vgg16", "resnet18", "alexnet"]
    assert get_spec("model1").norms == ("bn", "bcn", "bcn_ws") and get_spec("model3").optimizer == "adam"
    assert get_spec("model3").input_size == 64 and get_spec("model1").input_size == 224


@pytest.mark.parametrize("name,norm", CONFIGS)
def test_every_model_forward_and_backward_on_a_tiny_batch(name, norm):
    torch.manual_seed(0)
    size = max(get_spec(name).min_input_size, 32)
    model = create_model(name, norm=norm, input_size=size)
    x = torch.randn(2, 3, size, size)
    out = model(x)
    assert out.shape == (2, 2)
    nn.functional.cross_entropy(out, torch.tensor([0, 1])).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", [n for n in list_models() if get_spec(n).min_input_size > 1])
def test_min_input_size_is_the_real_floor(name):
    spec = get_spec(name)
    norm = (spec.norms or (None,))[0]
    m = spec.builder(norm=norm, pretrained=False, input_size=spec.min_input_size, num_classes=2).eval()
    assert m(torch.zeros(1, 3, spec.min_input_size, spec.min_input_size)).shape == (1, 2)
    below = spec.min_input_size - 1
    with pytest.raises(RuntimeError):
        spec.builder(norm=norm, pretrained=False, input_size=below, num_classes=2).eval()(torch.zeros(1, 3, below, below))


def test_too_small_input_is_a_clear_error():
    with pytest.raises(BenchError) as e:
        create_model("alexnet", input_size=48)
    assert str(e.value).startswith("alexnet cannot take 48 px inputs: it needs at least 63 px")
    assert "--input-size 63" in str(e.value)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(BenchError) as e:
        create_model("model4")
    assert str(e.value) == "unknown model 'model4'; known models: model1, model2, model3, vgg16, resnet18, alexnet"


def test_weight_standardization_really_standardizes():
    torch.manual_seed(0)
    conv = WSConv2d(3, 8, 3, padding=1)
    with torch.no_grad():
        conv.weight.mul_(7.0).add_(torch.arange(8.0).view(8, 1, 1, 1))  # far from standardized on purpose
    w = conv.standardized_weight()
    assert torch.allclose(w.mean(dim=(1, 2, 3)), torch.zeros(8), atol=1e-5)
    assert torch.allclose(w.std(dim=(1, 2, 3), unbiased=False), torch.ones(8), atol=1e-3)
    x = torch.randn(2, 3, 8, 8)
    ref = nn.functional.conv2d(x, w, conv.bias, padding=1)
    assert torch.allclose(conv(x), ref, atol=1e-5)
    # The point of WS: the output no longer depends on the weights' scale or per-channel offset.
    y = conv(x)
    with torch.no_grad():
        conv.weight.mul_(3.0).add_(5.0)
    assert torch.allclose(conv(x), y, atol=1e-4)


def test_bcn_has_a_batch_stage_then_a_channel_stage():
    torch.manual_seed(0)
    bcn = BatchChannelNorm2d(16).train()
    assert isinstance(bcn.batch, nn.BatchNorm2d) and isinstance(bcn.channel, nn.GroupNorm)
    assert bcn.channel.num_groups == 8
    x = torch.randn(4, 16, 5, 5) * 3 + 2
    y = bcn(x)
    assert torch.allclose(y, bcn.channel(bcn.batch(x)), atol=1e-6)
    assert bcn.batch.num_batches_tracked == 2  # the batch stage ran (and keeps running statistics)
    groups = y.view(4, 8, -1)  # channel stage: every sample's every group is normalized on its own
    assert torch.allclose(groups.mean(-1), torch.zeros(4, 8), atol=1e-5)
    assert torch.allclose(groups.var(-1, unbiased=False), torch.ones(4, 8), atol=1e-3)


@pytest.mark.parametrize("model", ["model1", "model2"])
def test_norm_variants_build_what_they_claim(model):
    def kinds(norm):
        m = create_model(model, norm=norm, input_size=64)
        return {type(x).__name__ for x in m.modules()}

    bn, bcn, ws = kinds("bn"), kinds("bcn"), kinds("bcn_ws")
    assert "BatchNorm2d" in bn and "BatchChannelNorm2d" not in bn and "WSConv2d" not in bn
    assert {"BatchChannelNorm2d", "BatchNorm2d", "GroupNorm"} <= bcn and "WSConv2d" not in bcn
    assert {"BatchChannelNorm2d", "WSConv2d"} <= ws and "Conv2d" not in ws  # every conv standardized



@pytest.mark.parametrize("name", ["model1", "model3"])
def test_pooling_before_relu_is_the_tables_order_in_values_and_gradients(name):
    """The stages run conv -> [norm] -> max-pool -> ReLU (faster); the thesis's conv -> [norm] -> ReLU -> max-pool
    must give the same outputs and the same weight gradients, odd sizes and negative windows included."""
    torch.manual_seed(0)
    ours = create_model(name, norm="bn" if name == "model1" else None, input_size=37).double()
    mods = list(ours.features)
    pools = [i for i, m in enumerate(mods) if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 3
    for i in pools:
        assert isinstance(mods[i + 1], nn.ReLU)  # every pool is followed by its ReLU
        mods[i], mods[i + 1] = mods[i + 1], mods[i]
    tables = nn.Sequential(*mods)  # the same modules (same weights) in the tables' order
    x = torch.randn(6, 3, 37, 37, dtype=torch.float64) - 0.3

    def grads(features):
        ours.zero_grad()
        out = ours.classifier(features(x))
        out.square().sum().backward()
        return out.detach(), [p.grad.clone() for p in ours.parameters()]

    out_a, g_a = grads(ours.features)
    out_b, g_b = grads(tables)
    assert torch.equal(out_a, out_b)
    assert all(torch.allclose(a, b, rtol=0, atol=1e-12) for a, b in zip(g_a, g_b))
    assert any(a.abs().sum() > 0 for a in g_a)

def test_count_macs_by_hand():
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Flatten(), nn.Linear(8 * 8 * 8, 2))
    assert count_macs(m, 8) == 8 * 8 * 8 * (3 * 3 * 3) + 512 * 2


def test_pretrained_weights_load_from_a_planted_checkpoint(tmp_path, monkeypatch):
    """The real torchvision path: get_model(weights=...) reads $TORCH_HOME/hub/checkpoints/<file of the URL>."""
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert weights_file("resnet18") == expected
    torch.manual_seed(123)
    planted = torchvision.models.resnet18(weights=None).state_dict()
    expected.parent.mkdir(parents=True)
    torch.save(planted, expected)  # not the real bytes: torch.hub checks the hash only when it downloads

    model = create_model("resnet18", pretrained=True)
    assert torch.equal(model.conv1.weight, planted["conv1.weight"])
    assert torch.equal(model.layer4[1].bn2.running_var, planted["layer4.1.bn2.running_var"])
    assert model.fc.out_features == 2 and model(torch.randn(2, 3, 64, 64)).shape == (2, 2)


def _offline(monkeypatch):
    # The edge of the network: the download itself fails as it does offline (no DNS).
    def no_network(url, dst, *a, **k):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)


def test_offline_without_cached_weights_names_the_file_and_the_flag(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    _offline(monkeypatch)
    with pytest.raises(BenchError) as e:
        load_pretrained("alexnet")
    msg = str(e.value)
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    assert msg.startswith("alexnet needs its ImageNet weights and they are not cached and cannot be downloaded")
    assert f"at {expected} ($TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth)" in msg
    assert "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth" in msg
    assert msg.endswith("or run with --no-pretrained (recorded in the results)")


def test_corrupt_cached_weights_are_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = weights_file("resnet18")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(BenchError) as e:
        create_model("resnet18", pretrained=True)
    assert str(e.value).startswith(f"{path} is not a usable resnet18 checkpoint")


def test_importing_the_bench_command_imports_no_torch():
    import subprocess

    code = "import sys, lrfp.cli.bench, benchmark.registry, benchmark.protocols; " \
           "print(sorted(m for m in ('torch', 'torchvision', 'numpy', 'matplotlib', 'datasets') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1])
    assert out.stdout.strip() == "[]"


def test_the_quick_protocol_and_the_docs_give_the_same_measured_time():
    """Tester's report: docs/bench.md said the quick grid takes ~3.5 min, the protocol line of results.md
    "under 15 minutes" (measured by nobody). Both now cite the one measurement in docs/measurements.md."""
    import re

    from benchmark.protocols import get_protocol

    docs = Path(__file__).resolve().parents[1] / "docs"
    said = re.findall(r"\d+ min \d+ s", get_protocol("quick").summary)
    assert said == ["3 min 25 s"] and "docs/measurements.md" in get_protocol("quick").summary
    assert "**3 min 25 s**" in (docs / "measurements.md").read_text()  # the measurement itself (machine, date, command)
    bench_md = (docs / "bench.md").read_text()
    assert "# every model, CPU-sized: 3 min 25 s" in bench_md and "~3.5 min" not in bench_md
    assert not re.search(r"under \d+ minutes", get_protocol("quick").summary + bench_md)
