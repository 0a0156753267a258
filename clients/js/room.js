// What a client knows of its room, kept current from server messages
// (PROTOCOL.md, "Snapshot", "Server messages", "Views").
//
// RoomState does no I/O and emits nothing: each method takes what arrived and
// returns what changed, and HudongClient turns that into events. A `snapshot`
// (in `joined`, or on its own) replaces everything; a `state` message carries changes
// against a version (PROTOCOL.md, "State messages"): whole views in `interactions`,
// JSON merge patches (RFC 7396) in `patches`, applied when its `base` is at most the
// version held; one with a later `base` shows a missed message (a gap), and the client
// asks for a snapshot. Batches add danmaku to `recent` and retractions take them out;
// `online` messages bring the viewer count.

/** How many danmaku `recent` keeps: the server's default `hub.replay_size`. */
export const RECENT_SIZE = 50;

/**
 * An interaction's view: `id`, `kind` and the kind's fields (PROTOCOL.md, "Views").
 * @typedef {{id: string, kind: string, [field: string]: unknown}} View
 */
/**
 * A view that changed, with the one it replaced (undefined for a new interaction).
 * @typedef {[view: View, previous: View | undefined]} ViewChange
 */

export class RoomState {
  constructor() {
    /** @type {Record<string, any> | null} the last snapshot received, as it arrived */
    this.snapshot = null;
    /** @type {Map<string, View>} interaction id -> its current view; the same Map throughout */
    this.interactions = new Map();
    /** @type {number} the room's degrade level, 0-3 (PROTOCOL.md, "Degrade levels") */
    this.degrade = 0;
    /** @type {Array<Record<string, any>>} the last RECENT_SIZE danmaku, oldest first */
    this.recent = [];
    /** @type {number} viewers in the room: from the snapshot, then from `online` messages */
    this.online = 0;
    /** @type {number | null} the version the views are at: the snapshot's, then each state message's */
    this.version = null;
  }

  /**
   * A snapshot replaces what was known. Returns the views that differ from before.
   * @param {Record<string, any>} snapshot
   * @returns {ViewChange[]}
   */
  applySnapshot(snapshot) {
    this.snapshot = snapshot;
    this.version = Number.isInteger(snapshot.version) ? snapshot.version : null;
    if (Number.isInteger(snapshot.degrade)) this.degrade = snapshot.degrade;
    if (Number.isInteger(snapshot.online)) this.online = snapshot.online;
    this.recent = Array.isArray(snapshot.recent) ? snapshot.recent.slice(-RECENT_SIZE) : [];
    const previous = new Map(this.interactions);
    this.interactions.clear();
    /** @type {ViewChange[]} */
    const changed = [];
    for (const [id, raw] of Object.entries(snapshot.interactions ?? {})) {
      const before = previous.get(id);
      const view = viewOf(id, raw, before);
      if (view === null) continue;
      this.interactions.set(id, view);
      if (before === undefined || !sameValue(before, view)) changed.push([view, before]);
    }
    return changed;
  }

  /**
   * A `state` message's views replace those with the same id. Returns the views that changed.
   * @param {Record<string, unknown> | undefined} views
   * @returns {ViewChange[]}
   */
  applyViews(views) {
    /** @type {ViewChange[]} */
    const changed = [];
    for (const [id, raw] of Object.entries(views ?? {})) {
      const before = this.interactions.get(id);
      const view = viewOf(id, raw, before);
      if (view === null) continue;
      this.interactions.set(id, view);
      if (before === undefined || !sameValue(before, view)) changed.push([view, before]);
    }
    return changed;
  }

  /**
   * A `state` message: its whole views and patched ones replace those with the same id.
   * Returns the views that changed and every view the message touched, whole (by id),
   * or null for a gap: the message applies to a version after the one held, so one was
   * missed and only a snapshot brings the views back. A message without `base` (from
   * a server before deltas) carries whole views only.
   * @param {Record<string, any>} message
   * @returns {{changed: ViewChange[], views: Record<string, View>} | null}
   */
  applyState(message) {
    const base = message.base;
    if (base !== undefined && (this.version === null || !Number.isInteger(base) || base > this.version)) return null;
    /** @type {Record<string, unknown>} */
    const whole = { ...(message.interactions ?? {}) };
    for (const [id, patch] of Object.entries(message.patches ?? {})) {
      const before = this.interactions.get(id);
      if (before === undefined) return null; // a patch for a view never held
      whole[id] = mergePatch(before, patch);
    }
    const changed = this.applyViews(whole);
    if (Number.isInteger(message.version)) this.version = Math.max(this.version ?? 0, message.version);
    /** @type {Record<string, View>} */
    const views = {};
    for (const id of Object.keys(whole)) {
      const view = this.interactions.get(id);
      if (view !== undefined) views[id] = view;
    }
    return { changed, views };
  }

  /** @param {Record<string, any>} event a danmaku event from a batch */
  addDanmaku(event) {
    this.recent.push(event);
    if (this.recent.length > RECENT_SIZE) this.recent.splice(0, this.recent.length - RECENT_SIZE);
  }

  /**
   * A moderator retracted the danmaku `id`: it leaves `recent`. Returns whether it was there.
   * @param {unknown} id
   */
  retract(id) {
    const at = this.recent.findIndex((event) => event.id === id);
    if (at < 0) return false;
    this.recent.splice(at, 1);
    return true;
  }
}

/**
 * The view to keep for `raw` under `id`, or null for something that is not a view.
 * A view is kept as it arrived; one without `id` or `kind` (PROTOCOL.md says every view
 * has them) gets them from its key and from the view it replaces.
 * @param {string} id
 * @param {unknown} raw
 * @param {View | undefined} before
 * @returns {View | null}
 */
function viewOf(id, raw, before) {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return null;
  const view = /** @type {View} */ (raw);
  if (typeof view.id === "string" && typeof view.kind === "string") return view;
  /** @type {Record<string, unknown>} */
  const completed = { ...view, id: typeof view.id === "string" ? view.id : id };
  const kind = typeof view.kind === "string" ? view.kind : before?.kind;
  if (kind !== undefined) completed.kind = kind;
  return /** @type {View} */ (completed);
}

/**
 * `target` with the JSON merge patch `patch` applied (RFC 7396, section 2); `target`
 * is not changed. A member set to null is removed; an object merges; anything else
 * (arrays too) replaces.
 * @param {unknown} target
 * @param {unknown} patch
 * @returns {any}
 */
export function mergePatch(target, patch) {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  /** @type {Record<string, unknown>} */
  const result = target !== null && typeof target === "object" && !Array.isArray(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/**
 * Deep equality of decoded message values (maps, arrays, scalars).
 * @param {unknown} a
 * @param {unknown} b
 * @returns {boolean}
 */
export function sameValue(a, b) {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) {
    return Number.isNaN(a) && Number.isNaN(b);
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, i) => sameValue(item, b[i]));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  const rb = /** @type {Record<string, unknown>} */ (b);
  const ra = /** @type {Record<string, unknown>} */ (a);
  return ka.every((key) => Object.hasOwn(rb, key) && sameValue(ra[key], rb[key]));
}
