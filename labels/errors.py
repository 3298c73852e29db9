"""Exceptions of the labels library.

Every expected failure (bad payload, unreadable image, unknown layout) raises a
subclass of `LabelError` with a one-sentence message naming the thing and the fix.
"""


class LabelError(Exception):
    """Root of every expected labels failure."""
