"""The room layer: between the edge (the hub's connections, the REST API) and the store.

``service.py`` takes commands and runs them through the kinds of
``server/interactions``; ``views.py`` keeps the views of served rooms current;
``moderation.py``, ``bursts.py`` and ``stats.py`` are its parts; ``outbox.py`` is how
it tells the hub what to send. Nothing here imports the hub.
"""
