"""sam2vol: interactive 3D medical image segmentation with SAM 2.

A CT or MRI volume is a video of 2D slices: prompt one slice, propagate the
object through the volume, correct on other slices.

Heavy parts (torch, SAM 2, the web app) live in extras and are imported lazily.
"""

from sam2vol.errors import InputError
from sam2vol.volume import Volume

__all__ = ["InputError", "Volume", "__version__"]
__version__ = "0.1.0"
