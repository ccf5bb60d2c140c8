"""The ``sam2vol`` command line."""
