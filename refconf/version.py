"""The version of refconf, recorded in every file it writes (models, checkpoints, golden
vectors, reports); a module of its own so that the lowest floors can read it."""

__version__ = "0.1.0"
