"""custody: wildlife forensic evidence and chain-of-custody tracker."""

__version__ = "0.1.0"
