"""Run under torchrun by tests/test_shards.py: each rank reads two epochs of aligned shards
(``argv[1]``) through the training DataLoader (2 workers) and writes the file names of its
samples, epoch by epoch, to ``<argv[2]>/rank<N>.json``."""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data import create_dataloader, create_dataset  # noqa: E402
from options import parse_options  # noqa: E402


def main() -> None:
    shards, out = sys.argv[1], Path(sys.argv[2])
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    opt = parse_options(["--dataroot", shards, "--model", "pix2pix", "--dataset_mode", "webdataset", "--netG",
                         "resnet_6blocks", "--load_size", "36", "--crop_size", "32", "--seed", "5",
                         "--num_threads", "2", "--gpu_ids", "-1"])
    loader = create_dataloader(opt, create_dataset(opt), rank=rank, world_size=world_size)
    epochs = []
    for epoch in (1, 2):
        loader.sampler.set_epoch(epoch)
        epochs.append([Path(p).name for batch in loader for p in batch["A_paths"]])
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rank{rank}.json").write_text(json.dumps(epochs))


if __name__ == "__main__":
    main()
