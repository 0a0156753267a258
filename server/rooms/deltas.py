"""The changes of a served room's views as state messages carry them (PROTOCOL.md,
"State messages"; :mod:`protocol.delta`).

Once per room per audience per flush, each changed view is compared with the one the
audience's previous state message left (``ServedRoom.sent``): a JSON merge patch goes,
or the whole view for a new interaction, a change a merge patch cannot express, or one
that a snapshot handed out since may hold differently. Always a patch, not "a patch
where shorter than the view": measured with ``python -m tests.flush_cost 50 10 200``,
patches everywhere make 3,680 B a flush against 3,684 B when each is weighed against
its view (8,475 B whole), and weighing costs two encodes per changed view. The hub
encodes the result once per codec and writes the same bytes to every connection of the
audience.
"""

from __future__ import annotations

from typing import Any

from protocol.delta import Delta, merge_patch
from server.interactions.kind import Audience
from server.rooms.served import ServedRoom


def take_delta(served: ServedRoom, audience: Audience) -> Delta | None:
    """The audience's changed views as a delta, moving its chain on; None: no change."""
    ids = served.changed[audience]
    whole_ids = served.whole[audience]
    views, sent = served.views[audience], served.sent[audience]
    whole: dict[str, dict[str, Any]] = {}
    patches: dict[str, dict[str, Any]] = {}
    for iid in sorted(ids):
        view = views.get(iid)
        if view is None:
            continue
        before = sent.get(iid)
        sent[iid] = view
        if before is None or iid in whole_ids:
            whole[iid] = view
            continue
        patch = merge_patch(before, view)
        if patch == {}:
            continue  # changed and changed back since the last message
        if patch is None:
            whole[iid] = view
        else:
            patches[iid] = patch
    ids.clear()
    whole_ids.clear()
    served.handed.discard(audience)
    if not whole and not patches:
        return None
    base = served.sent_version[audience]
    # Versions along a chain grow, so a missed message always shows as a gap.
    version = max(served.version, base + 1)
    served.sent_version[audience] = version
    return Delta(base, version, whole, patches)


__all__ = ["take_delta"]
