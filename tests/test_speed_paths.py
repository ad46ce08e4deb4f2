"""The speed flags change how fast a step runs, not what it computes.

Every fast path (mixed precision, channels-last, GEMM convolutions, fused Adam, the image
cache, torch.compile wiring) trains tiny networks to finite losses and agrees with the plain
fp32 path within the tolerance of its arithmetic. No timing is asserted here: speed is
measured by scripts/benchmark.py (docs/benchmarks.md).
"""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest
import torch
import torch._inductor.config as inductor_config
import torch._inductor.freezing as inductor_freezing
import torch.nn.functional as F
from torch import nn

from data import create_dataloader, create_dataset
from data.image_folder import read_image, set_image_cache
from models import create_model
from models.networks import define_G
from models.networks.fast_layers import (
    GEMM_MAX_COLUMNS,
    AutocastReflectionPad2d,
    BatchStatsInstanceNorm2d,
    GemmConv2d,
    GemmConvTranspose2d,
    use_fast_layers,
)
from options import parse_options, save_options
from tests.conftest import REPO_ROOT
from tests.helpers import PAIRED, tiny_args
from util.errors import UserError

FAST_PATHS = {
    "plain": ["--conv_impl", "native", "--adam_impl", "foreach"],
    "bf16": ["--amp", "bf16"],
    "channels_last": ["--channels_last"],
    "bf16_channels_last": ["--amp", "bf16", "--channels_last"],
    "cache_images": ["--cache_images"],
}


def make_model(model_name, root, tmp_path, *extra):
    torch.manual_seed(0)
    opt = parse_options(tiny_args(model_name, root, tmp_path, "run", "--serial_batches", "--no_flip", *extra),
                        is_train=True)
    model = create_model(opt)
    model.setup(opt)
    batch = next(iter(create_dataloader(opt, create_dataset(opt), shuffle=False)))
    return model, batch


@pytest.fixture
def roots(aligned_dataroot, unaligned_dataroot):
    yield {"pix2pix": aligned_dataroot, "cycle_gan": unaligned_dataroot}
    set_image_cache(False)  # --cache_images turns a process-wide cache on


@pytest.mark.parametrize("path", sorted(FAST_PATHS))
@pytest.mark.parametrize("model_name", ["pix2pix", "cycle_gan"])
def test_fast_path_trains_to_finite_losses(model_name, path, roots, tmp_path):
    model, batch = make_model(model_name, roots[model_name], tmp_path, *FAST_PATHS[path])
    model.train_step(batch)
    losses = model.get_current_losses()
    assert losses and all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses
    if "--amp" in FAST_PATHS[path]:
        assert model.fake_B.dtype == torch.bfloat16  # autocast really ran
    for net in model.networks().values():
        assert all(p.dtype == torch.float32 for p in net.parameters())  # master weights stay fp32


@pytest.mark.parametrize("model_name", ["pix2pix", "cycle_gan"])
def test_bf16_step_is_close_to_fp32(model_name, roots, tmp_path):
    results = {}
    for amp in ("none", "bf16"):
        model, batch = make_model(model_name, roots[model_name], tmp_path, "--amp", amp)
        model.train_step(batch)
        results[amp] = (model.get_current_losses(), model.fake_B.float().detach())
    (losses32, fake32), (losses16, fake16) = results["none"], results["bf16"]
    assert (fake16 - fake32).abs().mean() < 0.02  # images in [-1, 1]; bf16 keeps 8 mantissa bits
    for name, value in losses32.items():
        assert losses16[name] == pytest.approx(value, rel=0.05, abs=0.05), name


@pytest.mark.parametrize("model_name", ["pix2pix", "cycle_gan"])
def test_channels_last_matches_contiguous(model_name, roots, tmp_path):
    results = {}
    for extra in ((), ("--channels_last",)):
        model, batch = make_model(model_name, roots[model_name], tmp_path, *extra)
        model.train_step(batch)
        if extra:
            assert model.real_A.is_contiguous(memory_format=torch.channels_last)
        model.set_input(batch)
        model.forward()
        results[extra] = (model.get_current_losses(), model.fake_B.detach().contiguous())
    (losses_a, fake_a), (losses_b, fake_b) = results.values()
    torch.testing.assert_close(fake_b, fake_a, rtol=1e-4, atol=1e-4)
    for name, value in losses_a.items():
        assert losses_b[name] == pytest.approx(value, rel=1e-4, abs=1e-5), name


def test_bf16_testing_keeps_weights_in_bf16(aligned_dataroot, tmp_path):
    trained, batch = make_model("pix2pix", aligned_dataroot, tmp_path)
    trained.save_networks("latest")
    save_options(trained.opt, tmp_path / "run")  # test.py rebuilds the architecture from it
    outputs = {}
    for amp in ("none", "bf16"):
        opt = parse_options(["--dataroot", str(aligned_dataroot), "--model", "pix2pix", "--name", "run",
                             "--checkpoints_dir", str(tmp_path), "--gpu_ids", "-1", "--amp", amp], is_train=False)
        model = create_model(opt)
        model.setup(opt)
        model.eval()
        model.set_input(batch)
        model.test()
        outputs[amp] = model.fake_B.float()
        convs = [m for m in model.netG.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        norms = [m for m in model.netG.modules() if isinstance(m, nn.BatchNorm2d)]
        want = torch.bfloat16 if amp == "bf16" else torch.float32
        assert all(m.weight.dtype == want for m in convs)  # autocast need not convert them per image
        assert all(m.weight.dtype == torch.float32 for m in norms)
    assert (outputs["bf16"] - outputs["none"]).abs().mean() < 0.02


def test_fp16_on_cpu_is_a_user_error(aligned_dataroot, tmp_path):
    opt = parse_options(tiny_args("pix2pix", aligned_dataroot, tmp_path, "run", "--amp", "fp16"), is_train=True)
    with pytest.raises(UserError, match="--amp fp16 needs a GPU"):
        create_model(opt)


def test_compile_flag_compiles_every_network(aligned_dataroot, tmp_path, monkeypatch):
    options = []
    monkeypatch.setattr(torch, "compile", lambda net, **kw: options.append(kw.get("options")) or net)
    model, _ = make_model("pix2pix", aligned_dataroot, tmp_path, "--compile")
    assert options == [None] * len(model.model_names) and len(options) == 2  # training: weights change


def test_compile_without_a_cpp_compiler_is_a_user_error(aligned_dataroot, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    opt = parse_options(tiny_args("pix2pix", aligned_dataroot, tmp_path, "run", "--compile"), is_train=True)
    with pytest.raises(UserError, match="--compile on the CPU needs a C\\+\\+ compiler"):
        create_model(opt)


def test_testing_with_compile_freezes_weights(aligned_dataroot, tmp_path, monkeypatch):
    trained, _ = make_model("pix2pix", aligned_dataroot, tmp_path)
    trained.save_networks("latest")
    save_options(trained.opt, tmp_path / "run")
    options = []
    monkeypatch.setattr(torch, "compile", lambda net, **kw: options.append(kw.get("options")) or net)
    opt = parse_options(["--dataroot", str(aligned_dataroot), "--model", "pix2pix", "--name", "run",
                         "--checkpoints_dir", str(tmp_path), "--gpu_ids", "-1", "--compile"], is_train=False)
    create_model(opt).setup(opt)
    assert options == [{"freezing": True}]  # weights are graph constants when testing


@pytest.mark.extended  # tens of seconds: out of the default suite (under 10 minutes on 2 cores)
@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                    reason="torch.compile on a CPU needs a C++ compiler")
@inductor_config.patch(freezing=False)  # the default, whatever TORCHINDUCTOR_FREEZING says
def test_compiled_bf16_testing_matches_eager(aligned_dataroot, tmp_path, monkeypatch):
    frozen = []
    freeze = inductor_freezing.freeze
    monkeypatch.setattr(inductor_freezing, "freeze", lambda *a, **kw: frozen.append(1) or freeze(*a, **kw))
    trained, batch = make_model("pix2pix", aligned_dataroot, tmp_path, "--no_dropout")
    trained.save_networks("latest")
    save_options(trained.opt, tmp_path / "run")
    outputs = {}
    for extra in ([], ["--compile"]):
        opt = parse_options(["--dataroot", str(aligned_dataroot), "--model", "pix2pix", "--name", "run",
                             "--checkpoints_dir", str(tmp_path), "--gpu_ids", "-1", "--amp", "bf16", *extra],
                            is_train=False)
        model = create_model(opt)
        model.setup(opt)
        model.set_input(batch)
        model.test()
        outputs[bool(extra)] = model.fake_B.float()
    torch._dynamo.reset()
    assert (outputs[True] - outputs[False]).abs().mean() < 0.01
    assert frozen and not inductor_config.freezing  # frozen for that network only: later compiles are not


def test_gemm_layers_keep_standard_weight_layout_under_channels_last():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(8, 16, 4, 2, 1), nn.ConvTranspose2d(16, 8, 4, 2, 1))
    x = torch.randn(1, 8, 8, 8)
    expected = net(x)
    use_fast_layers(net).to(memory_format=torch.channels_last)
    assert all(m.weight.is_contiguous() for m in net)  # a GEMM reads it as a matrix, without a copy
    plain = nn.Conv2d(8, 16, 3).to(memory_format=torch.channels_last)
    assert plain.weight.is_contiguous(memory_format=torch.channels_last)  # other layers do convert
    torch.testing.assert_close(net(x.contiguous(memory_format=torch.channels_last)), expected,
                               rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- GEMM convolutions
CONV_CASES = [
    (nn.Conv2d(8, 16, 4, 2, 1), (1, 8, 16, 16)),             # 8x8 output: GEMM
    (nn.Conv2d(8, 16, 4, 2, 1, bias=False), (2, 8, 4, 4)),
    (nn.Conv2d(8, 16, 3, 1, 1), (1, 8, 5, 7)),              # not square
    (nn.Conv2d(8, 16, 4, 2, 1), (1, 8, 64, 64)),            # too many pixels: native path
    (nn.ConvTranspose2d(16, 8, 4, 2, 1), (1, 16, 2, 2)),
    (nn.ConvTranspose2d(16, 8, 4, 2, 1, bias=False), (3, 16, 1, 1)),
    (nn.ConvTranspose2d(16, 8, 3, 2, 1, output_padding=1), (2, 16, 4, 4)),  # ResNet upsampling
    (nn.ConvTranspose2d(16, 8, 4, 2, 1), (1, 16, 32, 32)),  # native path
    (nn.ConvTranspose2d(16, 3, 4, 2, 1), (2, 16, 32, 32)),  # an output image: GEMM at any size
]


@pytest.mark.parametrize("layer,shape", CONV_CASES)
def test_gemm_convolution_equals_native(layer, shape):
    torch.manual_seed(0)
    x = torch.randn(shape, requires_grad=True)
    out = layer(x)
    grads = torch.autograd.grad(out.square().sum(), [x, *layer.parameters()])
    use_fast_layers(layer)
    assert isinstance(layer, (GemmConv2d, GemmConvTranspose2d))
    fast = layer(x)
    fast_grads = torch.autograd.grad(fast.square().sum(), [x, *layer.parameters()])
    torch.testing.assert_close(fast, out, rtol=1e-5, atol=1e-5)
    for a, b in zip(fast_grads, grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_gemm_threshold_is_on_columns(monkeypatch):
    layer = use_fast_layers(nn.ConvTranspose2d(4, 8, 4, 2, 1))
    side = int(GEMM_MAX_COLUMNS ** 0.5)
    calls = []
    original = torch.nn.functional.fold
    monkeypatch.setattr(torch.nn.functional, "fold", lambda *a, **k: calls.append(1) or original(*a, **k))
    layer(torch.randn(1, 4, side, side))
    layer(torch.randn(1, 4, side * 2, side * 2))
    assert len(calls) == 1  # only the small input took the GEMM path


def test_gemm_conv_transpose_sums_bf16_in_fp32():
    """Under bf16 autocast the GEMM transposed convolution is about as accurate as the native one.

    Error = |result - fp64 result| / |fp64 result| (norms), seeds 0-4, AMD EPYC (AVX2):
    native bf16 4.2e-3 (without AVX-512 BF16 the native kernel is itself a GEMM and a fold
    summed in bf16; oneDNN's sums in fp32 and rounds once, like ``once``: 2.9e-3), the GEMM
    with fold and bias in bf16 (the former path) 4.2e-3, with them in fp32 3.3e-3 to 3.4e-3
    (1.15 x ``once``: its products are still rounded to bf16 before they are summed).
    """
    torch.manual_seed(0)
    layer = nn.ConvTranspose2d(128, 32, 4, 2, 1)
    x = torch.randn(1, 128, 8, 8)  # 64 input pixels: the GEMM path
    with torch.no_grad():
        exact = F.conv_transpose2d(x.double(), layer.weight.double(), layer.bias.double(), 2, 1)
        # bf16 inputs, exact products and sums, one rounding at the end: the best bf16 can do
        once = F.conv_transpose2d(x.bfloat16().double(), layer.weight.bfloat16().double(),
                                  layer.bias.double(), 2, 1).bfloat16()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            native = layer(x)
            cols = layer.weight.reshape(128, -1).t() @ x.reshape(1, 128, 64)
            bf16_sums = F.fold(cols, (16, 16), 4, padding=1, stride=2) + layer.bias.bfloat16().view(1, -1, 1, 1)
            gemm = use_fast_layers(layer)(x)
    errors = {name: float((out.double() - exact).norm() / exact.norm())
              for name, out in (("native", native), ("once", once), ("bf16_sums", bf16_sums), ("gemm", gemm))}
    assert gemm.dtype == native.dtype == torch.bfloat16, errors
    assert errors["gemm"] < 0.9 * errors["bf16_sums"], errors
    assert errors["gemm"] <= 1.25 * min(errors["native"], errors["once"]), errors


def test_fast_layers_keep_state_dict_and_outputs():
    torch.manual_seed(0)
    net = define_G(3, 3, 8, "unet_128", "batch", use_dropout=False).eval()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        expected = net(x)
        use_fast_layers(net)
        got = net(x)
    assert list(net.state_dict()) == list(state)
    assert any(isinstance(m, GemmConvTranspose2d) for m in net.modules())
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_autocast_pad_keeps_bf16_and_values():
    pad = use_fast_layers(nn.Sequential(nn.ReflectionPad2d(2)))[0]
    assert isinstance(pad, AutocastReflectionPad2d)
    x = torch.randn(1, 3, 8, 8).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = pad(x)
        reference = nn.functional.pad(x.float(), (2, 2, 2, 2), mode="reflect")
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), reference, rtol=0, atol=0)


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("affine", [False, True])
def test_instance_norm_as_batch_norm_is_identical(batch, affine):
    torch.manual_seed(0)
    norm = nn.InstanceNorm2d(8, affine=affine)
    if affine:
        nn.init.normal_(norm.weight)
        nn.init.normal_(norm.bias)
    x = torch.randn(batch, 8, 6, 5, requires_grad=True)
    out = norm(x)
    grad = torch.autograd.grad(out.square().sum(), x)[0]
    use_fast_layers(norm)
    assert isinstance(norm, BatchStatsInstanceNorm2d)
    fast = norm(x)
    torch.testing.assert_close(fast, out, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(torch.autograd.grad(fast.square().sum(), x)[0], grad, rtol=1e-5, atol=1e-5)
    channels_last = x.detach().contiguous(memory_format=torch.channels_last)
    if batch == 1:  # the point of it: the layout survives the norm layer
        assert norm(channels_last).is_contiguous(memory_format=torch.channels_last)


def test_conv_impl_native_keeps_torch_layers(aligned_dataroot, tmp_path):
    model, _ = make_model("pix2pix", aligned_dataroot, tmp_path, "--conv_impl", "native")
    assert not any(isinstance(m, (GemmConv2d, GemmConvTranspose2d)) for m in model.netG.modules())
    default, _ = make_model("pix2pix", aligned_dataroot, tmp_path)
    assert any(isinstance(m, GemmConvTranspose2d) for m in default.netG.modules())


# ----------------------------------------------------------------------------- Adam
@pytest.mark.parametrize("impl,flag", [("fused", "fused"), ("foreach", "foreach"), ("for_loop", "foreach")])
def test_adam_implementations_give_the_same_update(impl, flag, aligned_dataroot, tmp_path):
    model, _ = make_model("pix2pix", aligned_dataroot, tmp_path)
    generator = torch.Generator().manual_seed(0)
    start = [torch.randn(64, 32, 3, 3, generator=generator), torch.randn(7, generator=generator)]
    grads = [[torch.randn(t.shape, generator=generator) for t in start] for _ in range(3)]
    results = {}
    for name in ("for_loop", impl):
        model.opt.adam_impl = name
        params = [nn.Parameter(t.clone()) for t in start]
        optimizer = model.make_adam(params)
        assert bool(optimizer.param_groups[0][flag]) == (name != "for_loop")
        for step in grads:
            for p, g in zip(params, step):
                p.grad = g.clone()
            optimizer.step()
        results[name] = params
    for a, b in zip(results["for_loop"], results[impl]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_resume_keeps_this_runs_adam_implementation(aligned_dataroot, tmp_path):
    saved, batch = make_model("pix2pix", aligned_dataroot, tmp_path, "--adam_impl", "foreach")
    saved.train_step(batch)
    state = saved.training_state()
    fresh, _ = make_model("pix2pix", aligned_dataroot, tmp_path)
    fresh.load_training_state(state)
    assert fresh.optimizer_G.param_groups[0]["fused"]
    fresh.train_step(batch)


# ----------------------------------------------------------------------------- data
def test_image_cache_gives_identical_tensors(aligned_dataroot, tmp_path):
    path = sorted((aligned_dataroot / "train").iterdir())[0]
    fresh = read_image(path)
    set_image_cache(True)
    try:
        first, second = read_image(path), read_image(path)
    finally:
        set_image_cache(False)
    assert torch.equal(first, fresh) and torch.equal(second, fresh)
    second.add_(1)  # callers may write into what they get
    set_image_cache(True)
    try:
        assert torch.equal(read_image(path), fresh)
    finally:
        set_image_cache(False)


def test_cache_images_preloads_and_changes_no_sample(aligned_dataroot, tmp_path):
    items = {}
    for extra in ((), ("--cache_images",)):
        opt = parse_options(tiny_args("pix2pix", aligned_dataroot, tmp_path, "run", "--seed", "3", *extra),
                            is_train=True)
        dataset = create_dataset(opt)
        loader = create_dataloader(opt, dataset)
        items[extra] = next(iter(loader))
    set_image_cache(False)
    cached = [img for pair in dataset._prepared.values() for img in pair]
    # 8-bit images are kept as resized bytes: a quarter of the float size
    assert cached and all(img.dtype == torch.uint8 and img.shape[1:] == (opt.load_size,) * 2
                          for img in cached)
    for key in ("A", "B"):
        assert torch.equal(items[()][key], items[("--cache_images",)][key])


def test_cpu_runs_do_not_pin_memory(aligned_dataroot, tmp_path):
    opt = parse_options(tiny_args("pix2pix", aligned_dataroot, tmp_path), is_train=True)
    assert not create_dataloader(opt, create_dataset(opt)).pin_memory


def test_cached_cpu_runs_load_in_the_main_process(roots, tmp_path, monkeypatch):
    monkeypatch.setattr("data._usable_cpus", lambda: 2)
    workers = {}
    for extra in ((), ("--cache_images",)):
        opt = parse_options(tiny_args("pix2pix", roots["pix2pix"], tmp_path, "run", "--num_threads", "2", *extra),
                            is_train=True)
        workers[extra] = create_dataloader(opt, create_dataset(opt)).num_workers
    assert workers == {(): 2, ("--cache_images",): 0}  # a cached sample is cheaper than a worker's hand-over


# ----------------------------------------------------------------------------- the benchmark script
def load_benchmark():
    spec = importlib.util.spec_from_file_location("pix2cycle_benchmark", REPO_ROOT / "scripts" / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_help(capsys):
    bench = load_benchmark()
    with pytest.raises(SystemExit) as e:
        bench.main(["--help"])
    assert e.value.code == 0
    assert "--quick" in capsys.readouterr().out


def test_benchmark_smoke_run_writes_table_and_json(aligned_dataroot, tmp_path, capsys):
    bench = load_benchmark()
    out_json, out_md = tmp_path / "bench.json", tmp_path / "bench.md"
    threads = torch.get_num_threads()
    # One thread: a smoke run of tiny ops must not wait on a second, descheduled thread.
    code = bench.main(["--quick", "--models", "pix2pix", "--sizes", "128", "--ngf", "2", "--ndf", "2",
                       "--iters", "1", "--warmup", "1", "--threads", "1", "--configs", "plain,bf16", "--test_configs", "bf16",
                       "--test_images", "2", "--overhead_iters", "3", "--overhead_configs", "bf16+cache",
                       "--no_machine", "--no_memory",
                       "--dataroot", str(aligned_dataroot), "--json", str(out_json), "--markdown", str(out_md)])
    set_image_cache(False)
    torch.set_num_threads(threads)
    assert code == 0
    printed = capsys.readouterr().out
    assert "| pix2pix | 128 | 1 | bf16 |" in printed and "images / s" in printed
    data = json.loads(out_json.read_text())
    case = data["training"][0]
    assert set(case["results"]) == {"plain", "bf16"} and case["flops"] > 0
    assert len(case["results"]["bf16"]["wall"]) == 1
    assert data["test"][0]["results"]["bf16"]["images_per_s"] > 0
    assert set(data["overhead"]["results"]) == {"bf16+cache"}
    assert "| config |" in out_md.read_text()


def test_benchmark_memory_probe_reports_a_peak():
    bench = load_benchmark()
    args = bench.model_args("pix2pix", 128, "bf16", 2, 2, "cpu")
    result = bench.probe_memory({"args": args, "size": 128, "batch": 1, "device": "cpu",
                                 "threads": torch.get_num_threads()})
    assert result["peak_bytes"] > 0 and result["kind"] == "peak RSS"


def test_models_used_by_the_benchmark_are_known():
    bench = load_benchmark()
    assert set(bench.QUICK["cpu"]) <= set(bench.CONFIGS) and "pix2pix" in PAIRED


@pytest.mark.extended  # tens of seconds: out of the default suite (under 10 minutes on 2 cores)
def test_quality_check_scores_every_run(aligned_dataroot, tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("quality_check", REPO_ROOT / "scripts" / "quality_check.py")
    quality_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quality_check)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "q.json"
    assert quality_check.main(["--dataroot", str(aligned_dataroot), "--phase", "test", "--iters", "2",
                               "--seeds", "3", "--json", str(out), "--threads", "1"]) == 0
    result = json.loads(out.read_text())
    assert sorted(result["seeds"]) == ["3"]
    assert (tmp_path / "checkpoints" / "quality_check" / "quality_fast_seed3").is_dir()
    for runs in result["seeds"].values():
        assert sorted(runs) == ["fast", "fp32", "fp32_reordered"]
        for label, run in runs.items():
            assert run["scores"]["psnr"]["n"] == 4  # every test image of the demo set
            assert 0 < run["scores"]["psnr"]["mean"] < 60
            if label != "fp32":
                assert run["minus_fp32"]["psnr"] == pytest.approx(
                    run["scores"]["psnr"]["mean"] - runs["fp32"]["scores"]["psnr"]["mean"])


@pytest.mark.parametrize("mode,preprocess", [("aligned", "resize_and_crop"), ("aligned", "scale_width_and_crop"),
                                             ("aligned", "scale_width"), ("aligned", "none"),
                                             ("unaligned", "resize_and_crop"), ("single", "crop")])
def test_cached_resized_images_give_identical_samples(mode, preprocess, roots, tmp_path):
    from data.sampler import SampleIndex

    root = tmp_path / "data"
    shutil.copytree(roots["cycle_gan" if mode == "unaligned" else "pix2pix"], root)
    model = {"aligned": "pix2pix", "unaligned": "cycle_gan", "single": "test"}[mode]
    args = ["--dataroot", str(root / "train") if mode == "single" else str(root), "--dataset_mode", mode,
            "--model", model, "--netG", "resnet_6blocks", "--preprocess", preprocess, "--load_size", "72",
            "--crop_size", "48", "--seed", "5", "--gpu_ids", "-1", "--name", "run", "--checkpoints_dir", str(tmp_path)]
    fresh = create_dataset(parse_options(args, is_train=model != "test"))
    indices = [SampleIndex(i, seed=5, epoch=epoch) for epoch in (0, 1) for i in range(len(fresh))]
    expected = [fresh[index] for index in indices]
    cached = create_dataset(parse_options(args + ["--cache_images"], is_train=model != "test"))
    train_files = [p for p in root.rglob("*.*") if p.parent.name.startswith("train")]
    assert len(cached._prepared) == len(train_files)  # every image, filled before any worker starts
    if preprocess == "resize_and_crop":  # kept after the resize step, not as decoded
        assert all(img.shape[1:] == (72, 72) for images in cached._prepared.values() for img in images)
    for path in root.rglob("*.*"):
        path.write_bytes(b"not an image any more")  # the cache alone serves the samples now
    for index, want in zip(indices, expected):
        got = cached[index]
        assert got.keys() == want.keys()
        for key in ("A", "B"):
            if key in want:
                assert torch.equal(got[key], want[key]), (index, key)
