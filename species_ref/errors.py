"""Exceptions of the species_ref library.

Every expected failure (bad input file, unknown library, unusable query) raises a
subclass of `SpeciesRefError` whose message is one complete sentence naming the
thing that is wrong and, where possible, the fix.
"""


class SpeciesRefError(Exception):
    """Root of every expected species_ref failure."""


class InputFormatError(SpeciesRefError):
    """A query or reference file cannot be read (malformed, empty, unsupported)."""


class LibraryNotFound(SpeciesRefError):
    """A named reference library, or a version of it, does not exist."""


class QueryRejected(SpeciesRefError):
    """A query sequence fails quality control so badly that it cannot be matched."""
