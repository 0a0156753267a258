"""hudong: a self-hosted real-time interaction server for live streams and live events."""

__version__ = "0.1.0"
