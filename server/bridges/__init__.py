"""Platform chat bridges: each module turns one platform's live chat into danmaku of a room.

The adapter contract is in :mod:`server.bridges.base`; the runner that connects adapters to
rooms, reconnects them and reports their health lives beside it."""
