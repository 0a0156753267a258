"""Domain rules of the interactions: pure functions over plain values, no I/O.

Nothing here reads a clock, a socket or a store: times come in as ``now`` (seconds,
float), random seeds as bytes, stored state as the dataclasses below (each has
``to_dict``/``from_dict`` for JSON). The store and the hub apply what these functions
return (ARCHITECTURE.md, "Components"; STYLE.md, practice 2).

The storage model (details and the error-code table in :mod:`.base`)
-----------------------------------------------------------------------
A viewer's participation is a :class:`~.base.Contribution`: ``record`` (JSON-able),
``deltas`` (counter field -> int), ``box`` and ``once``. The store keeps one
contribution per viewer per box and applies a new one atomically: same ``(viewer,
key)`` again -> duplicate, no change; ``once`` and the viewer already holds one ->
``already_done``; ``counters += new.deltas - previous.deltas`` unless a capped field
would pass its cap (-> ``out_of_stock``); the new one replaces the previous.
:class:`~.base.Tally` is the reference implementation of one box. A box is stored as
its own contribution set, e.g. under ``box_key(interaction_id, box)``; the fields of
an interaction's boxes never collide, so results take the union of their counters
(``merge_counters``).

===========  ====================  =========================================  =========
kind         boxes                 viewer command -> Contribution             caps
===========  ====================  =========================================  =========
poll         one ("")              ``polls.vote``                             -
quiz         one per question      ``quiz.answer`` (once)                     -
co-design    one per slot          ``codesign.pick``; ``codesign.unpick``     ``codesign.caps``
                                   -> box to remove from
draw         one ("")              ``draws.enter`` (once; source ``entry``)   -
Q&A          one per question      ``qa.upvote`` (once); ``qa.unvote`` -> box  -
check-in     one ("")              ``checkin.check_in`` (once)                -
===========  ====================  =========================================  =========

Public API
----------
``base``
    ``InteractionError(code, message, **extra)``; ``INTERACTION_ERRORS`` (new codes for
    protocol/codes.py), ``REUSED_ERRORS``; ``Contribution(record, deltas, box="",
    once=False)``; ``Tally()`` with ``.apply(viewer_id, contribution, key, caps=None)
    -> ApplyResult(status, version, counters, capped_field)``, ``.remove(viewer_id)``,
    ``.counters``, ``.records``; ``ApplyResult.check()`` / ``refusal(status,
    capped_field)`` turn ``capped``/``already_done`` into the viewer's error;
    ``recount``, ``merge_counters``, ``box_key``; ``Status`` (``.at(now)``,
    ``.is_open(now)``) and ``transition(status, action, now, duration_s=None)`` for
    draft -> open -> closed -> revealed; ``Option``.
``polls``
    ``PollSpec``; ``transition(spec, status, action, now) -> Status``;
    ``vote(spec, status, raw, now) -> Contribution``;
    ``results(spec, counters, records=None)``;
    ``visible_results(spec, status, counters, records=None, *, now)``;
    ``instant_runoff(spec, rankings)``; ``terms(text)``; ``warm_up()`` (loads jieba's
    dictionary, about a second: call it once at start-up, off the event loop).
``quiz``
    ``QuizSpec``, ``QuizQuestion``, ``QuizState``;
    ``transition(spec, state, action, now, question_id=None) -> QuizState``
    (ask / close / reveal / finish); ``answer(spec, state, raw, now) -> Contribution``;
    ``score(question, option, elapsed)``;
    ``question_results(spec, state, question_id, counters)``;
    ``leaderboard(spec, state, records_by_question, limit=10)``;
    ``QuizSpec.public(state)`` hides unrevealed answers.
``codesign``
    ``DesignSpec``, ``Slot``, ``DesignOption``, ``DesignState``;
    ``transition(spec, state, action, now, slot_id=None) -> DesignState``
    (open / lock / lock_all / reveal); ``pick(spec, state, raw, now) -> Contribution``;
    ``unpick(spec, state, raw, now) -> box``; ``caps(spec)``;
    ``results(spec, state, counters)``; ``final_design(spec, counters)``;
    ``SlotRule``, ``next_round(previous, counters, *, id, title, rules) -> DesignSpec``.
``draws``
    ``DrawSpec``, ``DrawState``; ``new_seed()``; ``open_draw(spec, seed, now)``;
    ``enter(spec, state, viewer_id, now, *, excluded=()) -> Contribution``;
    ``keyword_window(spec, state, now)``; ``keyword_entrants(messages, keyword, start,
    end)``; ``previous_winners(audits)``;
    ``run_draw(spec, state, entrants, now, *, excluded=()) -> (DrawState, DrawAudit)``;
    ``DrawAudit.to_dict()`` (the exported record);
    ``verify_audit(record, *, commitment=None, entrants_hash=None) -> VerifyResult``.
``qa``
    ``QASpec``, ``Question``; ``ask(spec, status, raw, *, question_id, viewer_id, name,
    now) -> Question``; ``upvote(spec, status, questions, raw, now) -> Contribution``;
    ``unvote(...) -> box``; ``host_action(question, action, now, *, text=None)``
    (answer / pin / unpin / hide / unhide); ``order(questions, counters)``;
    ``board(questions, counters, *, include_hidden=False, private=False)``.
``checkin``
    ``CheckinSpec``; ``check_in(spec, status, *, name, now) -> Contribution``;
    ``count(counters)``; ``export(records)``; ``to_csv(rows)``.

Viewer commands raise :class:`~.base.InteractionError`; host operations raise it with
``invalid_field``, ``unknown_target`` or ``illegal_transition``. Repeating a host
operation whose effect is already there is a no-op, so retried host commands succeed.
"""
