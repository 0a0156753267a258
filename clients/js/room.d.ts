// Generated from room.js's JSDoc by `npm run types` (scripts/emit-types.mjs); do not edit.
/**
 * `target` with the JSON merge patch `patch` applied (RFC 7396, section 2); `target`
 * is not changed. A member set to null is removed; an object merges; anything else
 * (arrays too) replaces.
 * @param {unknown} target
 * @param {unknown} patch
 * @returns {any}
 */
export function mergePatch(target: unknown, patch: unknown): any;
/**
 * Deep equality of decoded message values (maps, arrays, scalars).
 * @param {unknown} a
 * @param {unknown} b
 * @returns {boolean}
 */
export function sameValue(a: unknown, b: unknown): boolean;
/** How many danmaku `recent` keeps: the server's default `hub.replay_size`. */
export const RECENT_SIZE: 50;
/**
 * An interaction's view: `id`, `kind` and the kind's fields (PROTOCOL.md, "Views").
 * @typedef {{id: string, kind: string, [field: string]: unknown}} View
 */
/**
 * A view that changed, with the one it replaced (undefined for a new interaction).
 * @typedef {[view: View, previous: View | undefined]} ViewChange
 */
export class RoomState {
    /** @type {Record<string, any> | null} the last snapshot received, as it arrived */
    snapshot: Record<string, any> | null;
    /** @type {Map<string, View>} interaction id -> its current view; the same Map throughout */
    interactions: Map<string, View>;
    /** @type {number} the room's degrade level, 0-3 (PROTOCOL.md, "Degrade levels") */
    degrade: number;
    /** @type {Array<Record<string, any>>} the last RECENT_SIZE danmaku, oldest first */
    recent: Array<Record<string, any>>;
    /** @type {number} viewers in the room: from the snapshot, then from `online` messages */
    online: number;
    /** @type {number | null} the version the views are at: the snapshot's, then each state message's */
    version: number | null;
    /**
     * A snapshot replaces what was known. Returns the views that differ from before.
     * @param {Record<string, any>} snapshot
     * @returns {ViewChange[]}
     */
    applySnapshot(snapshot: Record<string, any>): ViewChange[];
    /**
     * A `state` message's views replace those with the same id. Returns the views that changed.
     * @param {Record<string, unknown> | undefined} views
     * @returns {ViewChange[]}
     */
    applyViews(views: Record<string, unknown> | undefined): ViewChange[];
    /**
     * A `state` message: its whole views and patched ones replace those with the same id.
     * Returns the views that changed and every view the message touched, whole (by id),
     * or null for a gap: the message applies to a version after the one held, so one was
     * missed and only a snapshot brings the views back. A message without `base` (from
     * a server before deltas) carries whole views only.
     * @param {Record<string, any>} message
     * @returns {{changed: ViewChange[], views: Record<string, View>} | null}
     */
    applyState(message: Record<string, any>): {
        changed: ViewChange[];
        views: Record<string, View>;
    } | null;
    /** @param {Record<string, any>} event a danmaku event from a batch */
    addDanmaku(event: Record<string, any>): void;
    /**
     * A moderator retracted the danmaku `id`: it leaves `recent`. Returns whether it was there.
     * @param {unknown} id
     */
    retract(id: unknown): boolean;
}
/**
 * An interaction's view: `id`, `kind` and the kind's fields (PROTOCOL.md, "Views").
 */
export type View = {
    id: string;
    kind: string;
    [field: string]: unknown;
};
/**
 * A view that changed, with the one it replaced (undefined for a new interaction).
 */
export type ViewChange = [view: View, previous: View | undefined];
