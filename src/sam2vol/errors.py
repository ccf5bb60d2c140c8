"""User-facing errors.

An :class:`InputError` is a problem with what the user gave us (a file, an
argument, a prompt). The command line prints its message on one line and
exits non-zero, without a traceback.
"""


class InputError(ValueError):
    """Bad input from the user: the message names the file or argument and what was expected."""
