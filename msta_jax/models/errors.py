"""The one error type of every checkpoint reader: its message names the file and what is wrong.

Its own module so that the light readers (torch_pickle.py) raise it without importing the model code.
"""
from __future__ import annotations


class CheckpointError(ValueError):
  """A checkpoint cannot be read or does not match the model: names the file and every offending key."""


def brief(e: BaseException, limit: int = 300) -> str:
  """`Type: message` of an exception raised on a file's contents, cut to `limit` characters (a hostile
  file may put megabytes into the message)."""
  text = f'{type(e).__name__}: {e}'
  return text if len(text) <= limit else text[:limit] + '...'
