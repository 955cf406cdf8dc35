"""Kept for imports that predate auth/refusals.py, where the refusals now live."""

from keyhouse.auth.refusals import DirectoryUnavailable

__all__ = ["DirectoryUnavailable"]
