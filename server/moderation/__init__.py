"""Moderation as pure code: rate limits (ratelimit.py) and the text safety pipeline:
normalisation for matching and cleaning for display (text.py), the blocklist
(blocklist.py), links and contacts (links.py) and the filter that decides (screen.py)."""
