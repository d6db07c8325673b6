"""The AI content assistant: models, images, moderation (part A) and compose/drafts/sharing/quotas (part B).

Part A's modules are the provider boundary: ``models`` (which chat model serves, one retry policy, provider
errors translated to ``core.errors``), ``local_model`` (the bundled SmolLM2 served by llama-cpp-python as a
child process), ``images`` and ``card`` (OpenAI Images or a drawn text card), ``moderation`` (local rules
plus OpenAI's moderation endpoint). Nothing here connects or starts a process at import time.
"""
