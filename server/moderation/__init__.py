"""Moderation: rate limits now; text normalisation, blocklist and queues later."""
