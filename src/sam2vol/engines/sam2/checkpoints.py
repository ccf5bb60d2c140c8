"""Checkpoints and configs: which SAM 2 architecture a weights file holds.

A checkpoint is a file the user supplies (``--checkpoint PATH``): SAM 2.0 or
2.1 in any size (tiny, small, base+, large), or a fine-tune sharing one of
those architectures (MedSAM2 is SAM 2.1 tiny at image size 512). The config
is read from the state dict (patch-embedding width, number of trunk blocks,
2.1-only parameters) unless named with ``--config``. A checkpoint written by
``sam2vol train`` also records the image size it was trained at, which then
becomes the default. Nothing is downloaded.

For tests and benchmarks only, ``random:NAME`` (e.g. ``random:sam2.1_hiera_t``)
builds a randomly initialised model of a named config, with a loud warning.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sam2vol.errors import InputError

RANDOM_PREFIX = "random:"

# Short name -> hydra config name inside the ``sam2`` package.
CONFIGS: dict[str, str] = {
    f"{version}_hiera_{size}": f"configs/{version}/{version}_hiera_{size}.yaml"
    for version in ("sam2", "sam2.1")
    for size in ("t", "s", "b+", "l")
}

# Long size names as used in the official checkpoint file names.
_SIZE_ALIASES = {"tiny": "t", "small": "s", "base_plus": "b+", "base-plus": "b+", "large": "l"}

# (patch embedding width, number of trunk blocks) -> size letter.
_TRUNKS = {(96, 12): "t", (96, 16): "s", (112, 24): "b+", (144, 48): "l"}


class RandomWeightsWarning(UserWarning):
    """A model runs with random weights: its masks mean nothing."""


@dataclass(frozen=True)
class ModelSource:
    """Where the weights of a model come from.

    Attributes:
        config: Short config name (a key of :data:`CONFIGS`).
        state_dict: The weights (None for a random initialisation, or once
            released with :meth:`without_weights`).
        path: The checkpoint file, or None for random weights.
        seed: Seed of the random initialisation.
        image_size: The input size the checkpoint says it was trained at
            (``sam2vol train`` writes it), else None.
    """

    config: str
    state_dict: dict[str, Any] | None
    path: Path | None
    seed: int = 0
    image_size: int | None = None

    @property
    def hydra_config(self) -> str:
        return CONFIGS[self.config]

    @property
    def is_random(self) -> bool:
        return self.path is None

    def without_weights(self) -> ModelSource:
        """This source without its state dict (once a model holds the weights)."""
        return replace(self, state_dict=None)

    @property
    def looks_like_medsam2(self) -> bool:
        """Whether the file name says MedSAM2 (trained at image size 512)."""
        return self.path is not None and "medsam" in self.path.name.lower()

    @property
    def default_image_size(self) -> int:
        """The size recorded in the checkpoint, else 512 for MedSAM2 files, else 1024."""
        if self.image_size is not None:
            return self.image_size
        return 512 if self.looks_like_medsam2 else 1024


def config_name(name: str) -> str:
    """The short config name for ``name``.

    Accepts ``sam2.1_hiera_t``, ``sam2.1_hiera_tiny``, ``sam2.1_hiera_t.yaml`` and
    the packaged path ``configs/sam2.1/sam2.1_hiera_t.yaml``.

    Raises:
        InputError: The name is no known config.
    """
    short = Path(name.strip()).name
    short = short.removesuffix(".yaml").removesuffix(".pt")
    for long, letter in _SIZE_ALIASES.items():
        if short.endswith(f"_hiera_{long}"):
            short = short.removesuffix(long) + letter
    short = short.replace("hiera_base+", "hiera_b+")
    if short not in CONFIGS:
        raise InputError(f"--config must be one of {', '.join(CONFIGS)}, got {name!r}")
    return short


def detect_config(state_dict: dict[str, Any]) -> str:
    """The config whose architecture matches the weights in ``state_dict``.

    Raises:
        InputError: The weights match no SAM 2 architecture.
    """
    patch = state_dict.get("image_encoder.trunk.patch_embed.proj.weight")
    if patch is None:
        raise InputError("not a SAM 2 checkpoint: it has no image_encoder.trunk weights")
    blocks = {
        key.split(".")[3] for key in state_dict if key.startswith("image_encoder.trunk.blocks.")
    }
    size = _TRUNKS.get((int(patch.shape[0]), len(blocks)))
    if size is None:
        raise InputError(
            f"unknown SAM 2 image encoder (width {int(patch.shape[0])}, {len(blocks)} blocks): "
            "name its config with --config"
        )
    # SAM 2.1 added a spatial no-object embedding and a projected temporal encoding.
    version = "sam2.1" if "no_obj_embed_spatial" in state_dict else "sam2"
    return f"{version}_hiera_{size}"


def read_checkpoint(path: Path) -> tuple[dict[str, Any], int | None]:
    """The weights in a checkpoint file and the image size it records, if any.

    The file holds ``{"model": state_dict, ...}`` (official and ``sam2vol
    train`` checkpoints; the latter add ``image_size``) or a bare state dict.

    Raises:
        InputError: The file is missing, unreadable, holds no state dict, or
            records an image size that is no multiple of 32.
    """
    import torch

    if not path.is_file():
        raise InputError(f"--checkpoint {path}: no such file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a bad file
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"--checkpoint {path}: cannot read it as a PyTorch file ({first_line})"
        ) from exc
    image_size = None
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        recorded = data.get("image_size")
        if recorded is not None:
            if not isinstance(recorded, int) or recorded < 64 or recorded % 32:
                raise InputError(
                    f"--checkpoint {path}: records image_size {recorded!r}, "
                    "expected a multiple of 32 >= 64"
                )
            image_size = int(recorded)
        data = data["model"]
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise InputError(f"--checkpoint {path}: holds no model state dict")
    # Checkpoints saved from DataParallel/DDP wrappers prefix every key.
    if data and all(k.startswith("module.") for k in data):
        data = {k.removeprefix("module."): v for k, v in data.items()}
    return data, image_size


def resolve_source(checkpoint: str | Path, config: str | None = None, seed: int = 0) -> ModelSource:
    """Where the weights come from: a checkpoint file or ``random:NAME``.

    Args:
        checkpoint: A path, or ``random:CONFIG`` for random weights (tests and
            benchmarks only; warns loudly).
        config: Config name; default detected from the checkpoint.
        seed: Seed of a random initialisation.

    Raises:
        InputError: A missing or unreadable file, or an unknown config.
    """
    spec = str(checkpoint)
    if spec.startswith(RANDOM_PREFIX):
        name = config_name(spec.removeprefix(RANDOM_PREFIX) or config or "")
        if config is not None and config_name(config) != name:
            raise InputError(f"--config {config} contradicts --checkpoint {spec}")
        message = (
            f"SAM 2 engine runs with RANDOM weights ({name}, seed {seed}): "
            "its masks are meaningless; use this for tests and benchmarks only"
        )
        warnings.warn(message, RandomWeightsWarning, stacklevel=3)
        print(f"WARNING: {message}", file=sys.stderr)
        return ModelSource(config=name, state_dict=None, path=None, seed=seed)
    path = Path(spec).expanduser()
    state_dict, image_size = read_checkpoint(path)
    detected = detect_config(state_dict) if config is None else config_name(config)
    return ModelSource(
        config=detected, state_dict=state_dict, path=path, seed=seed, image_size=image_size
    )


def load_weights(model: Any, source: ModelSource) -> None:
    """Load ``source``'s weights into ``model`` strictly.

    Raises:
        InputError: The checkpoint does not match the config.
    """
    if source.state_dict is None:
        if source.path is not None:
            raise ValueError(f"the weights of {source.path} were released after loading")
        return
    model_keys = set(model.state_dict())
    missing = sorted(model_keys - set(source.state_dict))
    unexpected = sorted(set(source.state_dict) - model_keys)
    wrong_shape = sorted(
        key
        for key in model_keys & set(source.state_dict)
        if tuple(model.state_dict()[key].shape) != tuple(source.state_dict[key].shape)
    )
    problems = []
    for label, keys in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("mis-shaped", wrong_shape),
    ):
        if keys:
            problems.append(f"{len(keys)} {label} (e.g. {keys[0]})")
    if problems:
        raise InputError(
            f"--checkpoint {source.path} does not match config {source.config}: "
            f"{'; '.join(problems)} weights; name the right one with --config"
        )
    model.load_state_dict(source.state_dict, strict=True)
