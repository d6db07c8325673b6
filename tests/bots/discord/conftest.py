"""Fixtures of the Discord adapter's tests (defined in harness.py, which tests also import helpers from)."""

from tests.bots.discord.harness import dc, openai_services, people

__all__ = ["dc", "openai_services", "people"]
