"""The one place discord.py is imported, with its ``audioop`` DeprecationWarning silenced.

discord.py imports the stdlib ``audioop`` (for voice, which Chorus does not use); it is deprecated since
Python 3.11 and the warning would fail runs with warnings as errors.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="'audioop' is deprecated", category=DeprecationWarning)
    import discord
    import discord.gateway
    import discord.http

__all__ = ["discord"]
