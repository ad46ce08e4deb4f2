"""Live display back ends, against a real visdom server started offline by the test."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from reporting.display import BACKENDS, DisplayBackend, VisdomBackend, guarded, image_grid, make_backend
from util.errors import UserError

pytest.importorskip("visdom")
pytestmark = pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")

# visdom's usual entry point (python -m visdom.server) first downloads its web assets,
# which needs the internet; run_server.main() serves straight away with what is installed.
SERVER_CODE = (
    "import sys; sys.argv = ['visdom', '-port', sys.argv[1], '-env_path', sys.argv[2], "
    "'-logging_level', 'WARNING', '-bind_local']\n"
    "from visdom.server.run_server import main\n"
    "main()\n"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"visdom server exited: {proc.stdout.read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("visdom server did not start listening")


def start_server(tmp_path_factory) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env_dir = tmp_path_factory.mktemp("visdom_env")
    proc = subprocess.Popen([sys.executable, "-c", SERVER_CODE, str(port), f"{env_dir}/"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_listening(port, proc)
    except RuntimeError:
        proc.kill()
        raise
    return proc, port


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def visdom_port(tmp_path_factory):
    proc, port = start_server(tmp_path_factory)
    yield port
    stop_server(proc)


def client(port: int, env: str):
    import visdom

    return visdom.Visdom(server="http://localhost", port=port, env=env, raise_exceptions=True,
                         use_incoming_socket=False)


def window(port: int, env: str, win: str) -> dict:
    return json.loads(client(port, env).get_window_data(win, env=env))


def visuals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {label: rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
            for label in ("real_A", "fake_B", "rec_A", "real_B<&>")}


def test_visdom_shows_image_grid_labels_and_growing_loss_plot(visdom_port, capsys):
    env = "pix2cycle_test"
    backend = VisdomBackend(port=visdom_port, env=env, ncols=2, display_id=1, title="demo")
    assert backend.enabled
    backend.show_images(visuals(), epoch=1, total_iters=8)
    for i in range(4):
        backend.plot_losses(1 + i / 4, {"G_GAN": 0.7 - 0.1 * i, "D_real": 0.5}, total_iters=i)
    backend.log_metrics(100, {"FID": 40.0})
    assert backend.enabled
    assert capsys.readouterr().err == ""

    viz = client(visdom_port, env)
    for win in ("1_images", "1_labels", "1_losses", "1_metrics"):
        assert viz.win_exists(win, env=env), win
    images = window(visdom_port, env, "1_images")
    assert images["type"] == "image"
    assert images["content"]["src"].startswith("data:image/png;base64,")
    labels = window(visdom_port, env, "1_labels")
    assert "fake_B" in labels["content"] and "real_B&lt;&amp;&gt;" in labels["content"]
    losses = window(visdom_port, env, "1_losses")["content"]["data"]
    by_name = {trace["name"]: trace for trace in losses}
    assert set(by_name) == {"G_GAN", "D_real"}
    assert by_name["G_GAN"]["x"] == [1.0, 1.25, 1.5, 1.75]
    assert np.allclose(by_name["G_GAN"]["y"], [0.7, 0.6, 0.5, 0.4])
    metrics = window(visdom_port, env, "1_metrics")["content"]["data"]
    assert metrics[0]["name"] == "FID" and metrics[0]["y"] == [40.0]

    # a new loss appearing redraws the plot with every line
    backend.plot_losses(2.0, {"G_GAN": 0.3, "D_real": 0.4, "G_idt": 0.1})
    losses = window(visdom_port, env, "1_losses")["content"]["data"]
    assert {trace["name"] for trace in losses} == {"G_GAN", "D_real", "G_idt"}
    assert len(losses[0]["x"]) == 5


def test_visdom_one_window_per_image_when_ncols_is_zero(visdom_port):
    env = "pix2cycle_ncols0"
    backend = VisdomBackend(port=visdom_port, env=env, ncols=0, display_id=3)
    backend.show_images(visuals(), epoch=2, total_iters=5)
    viz = client(visdom_port, env)
    for label in visuals():
        assert viz.win_exists(f"3_images_{label}", env=env)


def count_connections(monkeypatch) -> list:
    """Record every outgoing socket connection attempt from now on."""
    attempts = []
    real_connect = socket.socket.connect

    def connect(self, address):
        attempts.append(address)
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


def test_unreachable_server_warns_once_and_then_costs_nothing(capsys, monkeypatch):
    backend = VisdomBackend(port=free_port(), env="nowhere")
    assert not backend.enabled
    attempts = count_connections(monkeypatch)
    for i in range(100):
        backend.show_images(visuals(), 1, i)
        backend.plot_losses(1.0 + i / 100, {"G_GAN": 0.5})
        backend.log_metrics(i, {"FID": 1.0})
    assert attempts == []  # no retry on every step: training runs at full speed
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning: ")
    assert "python -m visdom.server" in err and "--display_id 0" in err


def test_server_going_away_mid_run_warns_once(tmp_path_factory, capsys, monkeypatch):
    proc, port = start_server(tmp_path_factory)
    backend = VisdomBackend(port=port, env="dropped", timeout=1.0)
    backend.plot_losses(1.0, {"G_GAN": 0.5})
    assert backend.enabled
    stop_server(proc)
    backend.plot_losses(2.0, {"G_GAN": 0.5})  # the first failure turns the back end off
    assert not backend.enabled
    attempts = count_connections(monkeypatch)
    for i in range(50):
        backend.plot_losses(3.0 + i, {"G_GAN": 0.5})
        backend.show_images(visuals(), 1, i)
    assert attempts == []
    err = capsys.readouterr().err
    assert err.count("warning: ") == 1 and "off for the rest of this run" in err


def test_failing_backend_is_disabled_not_raised(capsys):
    class Broken(DisplayBackend):
        name = "broken"

        @guarded
        def plot_losses(self, epoch_frac, losses, total_iters=None):
            raise OSError("disk on fire")

    backend = Broken()
    backend.plot_losses(1.0, {"a": 1.0})
    backend.plot_losses(2.0, {"a": 1.0})
    assert not backend.enabled
    assert capsys.readouterr().err.count("warning: broken display failed") == 1


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is not None,
                    reason="tensorboard is installed")
def test_tensorboard_missing_is_a_clear_user_error(tmp_path):
    with pytest.raises(UserError, match="pip install tensorboard"):
        make_backend("tensorboard", log_dir=str(tmp_path))


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed")
def test_wandb_missing_is_a_clear_user_error():
    with pytest.raises(UserError, match="pip install wandb"):
        make_backend("wandb", project="p", run_name="r", config={})


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(UserError, match="visdom"):
        make_backend("nope")
    assert {"visdom", "tensorboard", "wandb"} <= set(BACKENDS)


def test_image_grid_pads_mixed_sizes():
    grid = image_grid([np.zeros((4, 6, 3), np.uint8), np.zeros((8, 2, 3), np.uint8),
                       np.zeros((2, 2, 3), np.uint8)], ncols=2, padding=1)
    assert grid.shape == (2 * 10, 2 * 8, 3) and grid.dtype == np.uint8
    assert grid[0, 0, 0] == 255 and grid[1, 1, 0] == 0
