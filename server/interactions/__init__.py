"""The interaction kinds: pure functions over plain values, no I/O.

Nothing here reads a clock, a socket or a store: times come in as ``now`` (seconds,
float), random seeds as bytes, stored state as msgspec structs (:mod:`.base`). The room
service (``server/rooms``) applies what the kinds return (ARCHITECTURE.md,
"Components"; STYLE.md, practice 2).

Each kind is one module exporting one :class:`~.kind.Kind` as ``KIND``; the registry
(:mod:`.registry`) lists them and is the only place that names them. Adding a kind
touches its module, its page module (``clients/web/kinds/<kind>.js``), its tests and
the docs; a deployment's own kinds come in through the setting ``server.kinds``.

===========  ===========================================  ==========================
module       kind                                         boxes
===========  ===========================================  ==========================
polls        ``poll``: single, multiple, ranked, rating,  one (the poll's id)
             text (word cloud)
quiz         ``quiz``: timed questions, scored answers    one per question
codesign     ``codesign``: one pick per slot, stock       one per slot
draws        ``draw``: verifiable lucky draws             one (entries, keyword
                                                          danmaku); or a poll's, or
                                                          the room's presence box
qa           ``qa``: questions and upvotes                ``questions`` (records),
                                                          one per question (upvotes)
checkin      ``checkin``: every room's one check-in       one
wall         ``wall``: every room's moderated wall        ``posts`` (records)
reactions    ``reactions``: every room's taps (点赞)      one (each node's totals)
===========  ===========================================  ==========================

The storage model (details and the error-code table in :mod:`.base`): a viewer's
participation is a :class:`~.base.Contribution` the room service turns into a
:class:`~.kind.Write`; the store keeps one contribution per holder per box and applies
a new one atomically (same ``(holder, key)`` again: duplicate; ``once`` and one held:
``already_done``; counters move by new - old deltas unless a cap would be passed:
``out_of_stock``). :class:`~.base.Tally` is the reference implementation of one box.

What a kind declares (:mod:`.kind`): spec and state types and the first state; its
viewer commands (:class:`~.kind.Op`) and :meth:`~.kind.Kind.command`; its host actions
and :meth:`~.kind.Kind.act` (a :class:`~.kind.Change`: new state, writes,
announcements); its boxes and views per :class:`~.kind.Audience`; what it needs from
the store first (:class:`~.kind.Needs`, answered with :class:`~.kind.Data`); what
danmaku do to it; its export and report section.
"""
