"""Errors whose message is written for users: one line naming the file or key and the fix.

Stage scripts print them without a traceback (cli.py). Torch-free, so that every stage can
import them cheaply.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input a user can fix; ``str(err)`` is the whole message, one line."""


class ParamsError(UserError, ValueError):
    """A bad value or key in params.yaml."""


class ImageSourceError(UserError, ValueError):
    """The image source cannot give any image (missing or empty folder)."""


class StaleFileError(UserError, ValueError):
    """A data file written by another version of a stage; the message says which to re-run."""


class TrainingDiverged(UserError, RuntimeError):
    """The loss became NaN or infinite; the message names the epoch and step."""
