"""scripts/download_model.py and its two .sh front ends, against a file server on 127.0.0.1."""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch

from models.networks import define_G
from pix2cycle import Translator
from tests.conftest import REPO_ROOT
from tests.inference_helpers import random_image

sys.path.insert(0, str(REPO_ROOT / "scripts"))  # scripts/ is a folder of scripts, not a package
import download_model  # noqa: E402


class _Handler(SimpleHTTPRequestHandler):
    """Serves files; under /truncated/ it promises more bytes than it sends."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path.startswith("/truncated/"):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    torch.manual_seed(0)
    # The architecture of the published CycleGAN models (resnet_9blocks, ngf 64, no dropout).
    torch.save(define_G(3, 3, 64, "resnet_9blocks", "instance", False).state_dict(), root / "horse2zebra.pth")
    (root / "edges2shoes.pth").write_bytes(b"weights")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def _free_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"  # nothing listens there now: connection refused


def test_cyclegan_model_downloads_and_translates_without_flags(server, tmp_path):
    checkpoints = tmp_path / "checkpoints"
    script = REPO_ROOT / "scripts" / "download_cyclegan_model.sh"
    done = subprocess.run(["bash", str(script), "horse2zebra", "--checkpoints_dir", str(checkpoints),
                           "--base_url", server], env={**os.environ, "PYTHON": sys.executable},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    folder = checkpoints / "horse2zebra_pretrained"
    assert sorted(p.name for p in folder.iterdir()) == ["latest_net_G.pth", "train_opt.json"]
    options = json.loads((folder / "train_opt.json").read_text())
    assert (options["netG"], options["norm"], options["no_dropout"], options["model"]) == \
        ("resnet_9blocks", "instance", True, "test")
    out = Translator.from_checkpoint(folder, device="cpu")(random_image(48, 40))
    assert out.size == (48, 40) and np.asarray(out).std() > 0


def test_pix2pix_model_records_its_architecture(server, tmp_path):
    assert download_model.main(["edges2shoes", "--kind", "pix2pix", "--checkpoints_dir", str(tmp_path),
                                "--base_url", server]) == 0
    folder = tmp_path / "edges2shoes_pretrained"
    assert (folder / "latest_net_G.pth").read_bytes() == b"weights"
    options = json.loads((folder / "train_opt.json").read_text())
    assert (options["netG"], options["norm"], options["no_dropout"], options["model"], options["direction"]) == \
        ("unet_256", "batch", False, "pix2pix", "AtoB")


def test_url_pattern_and_environment_override(monkeypatch):
    assert download_model.model_url("style_monet", "cyclegan") == \
        "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/style_monet.pth"
    assert download_model.model_url("day2night", "pix2pix") == \
        "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/day2night.pth"
    monkeypatch.setenv(download_model.URL_ENV, "http://mirror.example/models")
    assert download_model.model_url("sat2map", "pix2pix") == "http://mirror.example/models/sat2map.pth"


@pytest.mark.parametrize("case", ["bad_name", "not_on_server", "server_down", "truncated"])
def test_failures_are_one_line_and_leave_nothing(server, tmp_path, capsys, case):
    checkpoints = tmp_path / "checkpoints"
    name, url = {"bad_name": ("horse2unicorn", server), "not_on_server": ("zebra2horse", server),
                 "server_down": ("horse2zebra", _free_port_url()),
                 "truncated": ("horse2zebra", server + "truncated/")}[case]
    code = download_model.main([name, "--kind", "cyclegan", "--checkpoints_dir", str(checkpoints), "--base_url", url])
    assert code == (2 if case == "bad_name" else 1)
    err = capsys.readouterr().err.splitlines()
    if case == "truncated":  # the server answered: the download began, then broke off
        assert err[0].startswith("downloading ") and len(err) == 2
        err = err[1:]
    assert len(err) == 1 and err[0].startswith("error: ")  # offline: no "downloading" before the error
    expected = {"bad_name": "unknown cyclegan model", "not_on_server": "404", "server_down": "refused",
                "truncated": "connection closed after"}[case]
    assert expected in err[0]
    assert not checkpoints.exists()  # no partial file, no empty folder


def test_failure_keeps_an_existing_checkpoints_folder_clean(tmp_path, capsys):
    (tmp_path / "other_run").mkdir()
    assert download_model.main(["horse2zebra", "--kind", "cyclegan", "--checkpoints_dir", str(tmp_path),
                                "--base_url", _free_port_url()]) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["other_run"]
