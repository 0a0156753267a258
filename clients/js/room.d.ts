// Generated from room.js's JSDoc by `npm run types` (scripts/emit-types.mjs); do not edit.
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
