"""Reading and writing volumes with their geometry."""

from sam2vol.io.read import default_max_voxels, read_label, read_volume
from sam2vol.io.write import (
    check_output,
    check_writable,
    remove_stale_temps,
    write_mask,
    write_volume,
)

__all__ = [
    "check_output",
    "check_writable",
    "default_max_voxels",
    "read_label",
    "read_volume",
    "remove_stale_temps",
    "write_mask",
    "write_volume",
]
