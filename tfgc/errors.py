"""Errors a user can cause. Each carries a one-line message; the CLIs print it and exit non-zero."""


class TfgcError(Exception):
    """Base class of every error tfgc raises for bad input, files or settings."""

    exit_code = 1


class ConfigError(TfgcError):
    """An unknown preset, an invalid setting or an unreadable config file."""


class DataError(TfgcError):
    """A training folder that is missing, empty or holds an unreadable image."""


class ImageError(TfgcError):
    """An input image that cannot be read, or an output image that cannot be written."""


class FormatError(TfgcError):
    """A .tfgc file that is truncated, corrupted, or of an unknown version."""


class ModelError(TfgcError):
    """A model directory that is missing, incomplete, corrupted or of a newer format."""


class ModelMismatchError(TfgcError):
    """A .tfgc file written by another model than the one given to decode it."""


class OutputExistsError(TfgcError):
    """An output path that exists already, without --force."""
