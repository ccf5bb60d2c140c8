"""Fine-tune SAM 2 for volumes after SAM2-3dMed (Yang, Xu and Tian, 2025).

The image encoder stays frozen; memory attention and the mask decoder learn
from clips of consecutive slices prompted with one point at the centre of the
object, with two training-time heads: slice relative position prediction
(SRPP) and boundary detection (BD). See ``docs/finetune.md``.

Modules (all but :mod:`~sam2vol.finetune.config` and
:mod:`~sam2vol.finetune.split` import torch):

| module    | what                                                        |
|-----------|-------------------------------------------------------------|
| config    | :class:`TrainConfig`, the settings of a run                 |
| split     | the 80/20 split by case, written to ``split.json``          |
| clips     | cases as slice stacks, clip sampling, prompts, boundary labels |
| heads     | the SRPP and BD heads                                       |
| losses    | segmentation, SRPP and boundary losses                      |
| model     | SAM 2 on clips with a frozen, cached image encoder          |
| trainer   | the loop: checkpoints, resume, logs, plot                   |
"""

from sam2vol.finetune.config import TrainConfig

__all__ = ["TrainConfig"]
