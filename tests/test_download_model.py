"""scripts/download_model.py and its two .sh front ends, against a file server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import functools
import hashlib
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
from util.errors import UserError

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
    with _serving(root) as url:
        yield url


@contextlib.contextmanager
def _serving(root):
    """An HTTP server on 127.0.0.1 for the files in ``root``; yields its URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
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
    assert sorted(p.name for p in folder.iterdir()) == ["SHA256SUMS", "latest_net_G.pth", "train_opt.json"]
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


# ----------------------------------------------------------------------------- checksums
def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_error_line(err: str, *words: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("downloading ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert all(w in lines[0] for w in words), lines[0]
    return lines[0]


@pytest.fixture()
def served_model(tmp_path):
    """A served horse2zebra.pth of a small CycleGAN generator, and its URL."""
    root = tmp_path / "served"
    root.mkdir()
    torch.manual_seed(1)
    torch.save(define_G(3, 3, 8, "resnet_9blocks", "instance", False).state_dict(), root / "horse2zebra.pth")
    with _serving(root) as url:
        yield root, url


def _fetch(url, checkpoints) -> int:
    return download_model.main(["horse2zebra", "--kind", "cyclegan", "--checkpoints_dir", str(checkpoints),
                                "--base_url", url])


def test_download_records_the_sha256_and_every_load_checks_it(served_model, tmp_path, capsys, aligned_dataroot):
    import test as test_script
    import translate

    root, url = served_model
    checkpoints = tmp_path / "checkpoints"
    assert _fetch(url, checkpoints) == 0
    folder = checkpoints / "horse2zebra_pretrained"
    weights = folder / "latest_net_G.pth"
    assert (folder / "SHA256SUMS").read_text() == f"{_sha(root / 'horse2zebra.pth')}  latest_net_G.pth\n"
    arch = {"ngf": 8}  # the served generator is smaller than the published ones
    Translator.from_checkpoint(folder, device="cpu", **arch)  # as downloaded: loads
    # One value changed on disk (a flipped bit, a file swapped in by hand): refused at every door.
    state = torch.load(weights, weights_only=True)
    state[next(iter(state))].view(-1)[0] += 1
    torch.save(state, weights)
    with pytest.raises(UserError, match="changed since it was downloaded"):
        Translator.from_checkpoint(folder, device="cpu", **arch)
    capsys.readouterr()
    image = tmp_path / "in.png"
    random_image(32, 32).save(image)
    assert translate.main([str(image), "--name", folder.name, "--checkpoints_dir", str(checkpoints), "--ngf", "8",
                           "--out", str(tmp_path / "out")]) == 2
    _one_error_line(capsys.readouterr().err, "latest_net_G.pth changed since it was downloaded", "SHA256SUMS")
    assert test_script.main(["--dataroot", str(aligned_dataroot / "test"), "--name", folder.name, "--model", "test",
                             "--checkpoints_dir", str(checkpoints), "--results_dir", str(tmp_path / "results"),
                             "--ngf", "8", "--gpu_ids", "-1", "--num_threads", "0", "--num_test", "1",
                             "--dataset_mode", "single"]) == 2
    _one_error_line(capsys.readouterr().err, "changed since it was downloaded")
    # Downloading it again restores the recorded file.
    assert _fetch(url, checkpoints) == 0
    assert _sha(weights) == _sha(root / "horse2zebra.pth")
    Translator.from_checkpoint(folder, device="cpu", **arch)


def test_download_again_refuses_a_file_that_changed_on_the_server(served_model, tmp_path, capsys):
    root, url = served_model
    checkpoints = tmp_path / "checkpoints"
    assert _fetch(url, checkpoints) == 0
    folder = checkpoints / "horse2zebra_pretrained"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    torch.save(define_G(3, 3, 8, "resnet_9blocks", "instance", False).state_dict(), root / "horse2zebra.pth")
    capsys.readouterr()
    assert _fetch(url, checkpoints) == 1
    _one_error_line(capsys.readouterr().err, "is not the file downloaded before", "SHA256SUMS", "kept")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing replaced
    assert sorted(p.name for p in checkpoints.iterdir()) == [folder.name]  # no temporary folder left


def test_dataset_download_records_and_checks_its_archive(tmp_path, capsys, monkeypatch):
    import io
    import tarfile

    from tests.conftest import load_script

    def archive(content: bytes) -> None:
        with tarfile.open(served / "facades.tar.gz", "w:gz") as tf:
            info = tarfile.TarInfo("facades/train/1.png")
            info.size = len(content)
            tf.addfile(info, io.BytesIO(content))

    served = tmp_path / "served"
    served.mkdir()
    archive(b"one")
    download = load_script("download_dataset")
    root = tmp_path / "datasets"
    with _serving(served) as url:
        monkeypatch.setenv(download.URL_ENV, url)
        assert download.main(["facades", "--root", str(root), "--kind", "pix2pix"]) == 0
        sums = (root / "facades" / "SHA256SUMS").read_text()
        assert sums == f"{_sha(served / 'facades.tar.gz')}  facades.tar.gz\n"
        assert download.main(["facades", "--root", str(root), "--kind", "pix2pix"]) == 0  # the same archive again: fine
        archive(b"two")
        capsys.readouterr()
        assert download.main(["facades", "--root", str(root), "--kind", "pix2pix"]) == 1
    _one_error_line(capsys.readouterr().err, "facades.tar.gz is not the file downloaded before")
    assert (root / "facades" / "train" / "1.png").read_bytes() == b"one"
    assert (root / "facades" / "SHA256SUMS").read_text() == sums
