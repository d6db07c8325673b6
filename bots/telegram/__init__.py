"""The Telegram adapter (python-telegram-bot).

PTB reads ``PTB_TIMEDELTA`` whenever it builds a RetryAfter: with it set, durations are timedeltas and PTB
emits no deprecation warning (tests turn warnings into errors), so it is set before telegram is imported.
"""

import os

os.environ.setdefault("PTB_TIMEDELTA", "true")
