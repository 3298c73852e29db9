"""Exceptions of the labels library.

Every expected failure (bad payload, unreadable image, unknown layout) raises a
subclass of `LabelError` with a one-sentence message naming the thing and the fix.
"""


class LabelError(Exception):
    """Root of every expected labels failure."""


class PayloadError(LabelError):
    """A label payload cannot be built, encoded or parsed."""


class ForeignLabelError(PayloadError):
    """The scanned text is not a custody evidence label at all."""


class UnsupportedVersionError(PayloadError):
    """The label was written in a payload format this version cannot read."""


class DecodeError(LabelError):
    """An image or PDF cannot be read, or holds no readable QR code."""


class LayoutError(LabelError):
    """A label layout, start position or label content is invalid."""
