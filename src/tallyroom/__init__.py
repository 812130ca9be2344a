"""tallyroom: election results that anyone can verify."""

__version__ = "0.1.0"
