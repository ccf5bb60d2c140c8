"""Reading and writing volumes with their geometry."""

from sam2vol.io.read import read_label, read_volume
from sam2vol.io.write import check_writable, write_mask, write_volume

__all__ = ["check_writable", "read_label", "read_volume", "write_mask", "write_volume"]
