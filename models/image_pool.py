"""History of generated images for the discriminator (Shrivastava et al., 2017).

Updating D on a buffer of past fakes rather than only the latest ones reduces model
oscillation; CycleGAN uses a pool of 50.
"""

from __future__ import annotations

import random

import torch


class ImagePool:
    """Stores up to ``pool_size`` generated images and mixes them into the fakes shown to D.

    The pool has its own random generator, seeded from ``seed`` or, when that is None,
    from the global ``random`` module so that a global seed still makes runs repeatable.
    """

    def __init__(self, pool_size: int, seed: int | None = None) -> None:
        self.pool_size = pool_size
        self.images: list[torch.Tensor] = []
        self.rng = random.Random(random.getrandbits(64) if seed is None else seed)

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Return a batch like ``images``: each image is itself or, once the pool is full,
        with probability 1/2 a stored one (which the new image then replaces)."""
        if self.pool_size == 0:
            return images
        returned = []
        for image in images.detach():
            image = image.unsqueeze(0).clone()
            if len(self.images) < self.pool_size:
                self.images.append(image)
                returned.append(image)
            elif self.rng.uniform(0, 1) > 0.5:
                idx = self.rng.randint(0, self.pool_size - 1)
                stored = self.images[idx]
                self.images[idx] = image
                # Images restored from a checkpoint sit on the CPU until first used.
                returned.append(stored.to(image.device))
            else:
                returned.append(image)
        return torch.cat(returned, 0)

    def state_dict(self) -> dict:
        """Images (on the CPU) and the generator state, in types ``torch.load(weights_only=True)``
        accepts."""
        version, internal, gauss_next = self.rng.getstate()
        return {
            "pool_size": self.pool_size,
            "images": [image.cpu() for image in self.images],
            "rng_state": (version, list(internal), gauss_next),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore the pool so that later queries continue exactly as in the saved run.

        The size given to the constructor wins over the saved one (a changed ``--pool_size``).
        """
        self.images = [image.clone() for image in state["images"][:self.pool_size]]
        version, internal, gauss_next = state["rng_state"]
        self.rng.setstate((version, tuple(internal), gauss_next))
