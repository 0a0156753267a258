// Danmaku in lanes without overlap, at a steady frame rate (the overlay and the wall).
//
// The stage is a grid of rows, one line high. Scrolling danmaku use the rows of the
// upper `area`; top danmaku stand still, centred, in rows from the top, bottom ones in
// rows from the bottom, for `fixedMs`. The three modes share the rows, so a row is given
// to a danmaku only when nothing in it will meet the newcomer while both are on screen:
//
// - scrolling danmaku all move at one speed (px/s), right to left, so one that entered a
//   row after another can never catch up with it: a row is free for the next one as soon
//   as the last one's tail is `gap` pixels inside the screen;
// - a scrolling danmaku may enter a row that holds a fixed one only if its head reaches
//   the fixed one (less `gap`) after the fixed one has gone;
// - a fixed danmaku takes a row only if no scrolling danmaku in it crosses its box (with
//   `gap` either side) while it stands there, and no other fixed one stands there. When
//   none is free it claims the row that clears first: no scrolling danmaku enters a
//   claimed row, so it clears, and the rows that top and bottom danmaku keep using
//   become their zones for as long as they come.
//
// Identical danmaku merge ("666 ×37", like Bilibili's 弹幕合并) when `mergeMs` is set:
// one that arrives less than `mergeMs` after the first of its text (case and spacing
// aside) adds its count to the item already shown or waiting, whose badge grows in place
// (`data-count`). Hosts', moderators' and highlighted danmaku never merge. An item that
// can still merge keeps room for its badge in its row, so a growing badge never reaches
// the next danmaku.
//
// When no row is free a danmaku waits in a short queue (hosts' and moderators' first)
// and the oldest waiting ones are dropped: the screen shows what it can, it never piles
// up. The number of elements on screen is bounded by `maxOnScreen`, so the DOM stays
// small at any rate.
//
// Motion is one Web Animation per danmaku on `transform` (the compositor moves it; no
// layout per frame), and the queue is drained on animation frames.

import { cssColor, staffBadge } from "/static/common.js";

/**
 * @typedef {object} LaneOptions
 * @property {number} [lanes]        scrolling lanes (default: as many as fit in `area`)
 * @property {number} [fontPx]       danmaku size in px (default 32)
 * @property {number} [speed]        scrolling speed in px/s (default: the width in 8 s)
 * @property {number} [area]         share of the height the scrolling lanes use (0..1, default 0.8)
 * @property {number} [gap]          px between danmaku in a lane (default fontPx)
 * @property {number} [fixedMs]      how long top and bottom danmaku stay (default 4000)
 * @property {number} [mergeMs]      identical danmaku merge within this window (default 0: never)
 * @property {number} [maxQueue]     danmaku waiting for a lane (default 50)
 * @property {number} [maxOnScreen]  elements on screen at most (default 160)
 */

/**
 * One danmaku waiting or shown: its event, its count (merges add to it) and, once
 * measured, its element and width.
 * @typedef {{event: any, priority: boolean, count: number, el?: HTMLElement, width?: number, merge?: Merge, claim?: Row}} Item
 */
/** @typedef {{item: Item, until: number, ids: Set<string>}} Merge */
/**
 * A row of the stage: its scrolling danmaku (when each started, how wide with its badge
 * room), the fixed one standing in it, if any (until when, its left and right edge), and
 * the fixed one waiting for it, if any.
 * @typedef {{scroll: Array<{start: number, width: number}>, fixed: {until: number, left: number, right: number} | null, claim: Item | null}} Row
 */

const BADGE_EM = 3.2; // room kept for " ×9999" while an item can still merge
const SLACK_MS = 250; // a fixed danmaku's row is held this much longer than it shows

/** The key under which danmaku merge: the text, case and spacing aside. @param {any} text */
const mergeKey = (text) => String(text ?? "").toLowerCase().split(/\s+/).filter(Boolean).join(" ");

export class DanmakuStage {
  /**
   * @param {HTMLElement} root  the element danmaku fly over (positioned, overflow hidden)
   * @param {LaneOptions} [options]
   */
  constructor(root, options = {}) {
    this.root = root;
    this.fontPx = options.fontPx ?? 32;
    this.lineHeight = Math.round(this.fontPx * 1.35);
    this.gap = options.gap ?? this.fontPx;
    this.area = Math.min(1, Math.max(0.1, options.area ?? 0.8));
    this.fixedMs = options.fixedMs ?? 4000;
    this.mergeMs = Math.max(0, options.mergeMs ?? 0);
    this.maxQueue = options.maxQueue ?? 50;
    this.maxOnScreen = options.maxOnScreen ?? 160;
    this.askedLanes = options.lanes;
    this.askedSpeed = options.speed;
    /** @type {Item[]} */
    this.queue = [];
    /** @type {Map<string, {el: HTMLElement, animation: Animation}>} */
    this.live = new Map();
    /** @type {Map<string, Merge>} the item each text merges into now */
    this.merging = new Map();
    /** @type {Map<string, Merge>} danmaku merged into another item, by id (for retractions) */
    this.mergedIds = new Map();
    /** @type {Row[]} */
    this.rows = [];
    this.lanes = 0;
    this.shown = 0;
    this.merged = 0;
    this.dropped = 0;
    this._frame = 0;
    this.root.style.setProperty("--danmaku-size", `${this.fontPx}px`);
    this.root.style.setProperty("--danmaku-line", `${this.lineHeight}px`);
    this.resize();
    window.addEventListener("resize", () => this.resize());
  }

  resize() {
    this.width = this.root.clientWidth || window.innerWidth;
    this.height = this.root.clientHeight || window.innerHeight;
    const total = Math.max(1, Math.floor(this.height / this.lineHeight));
    const fit = Math.max(1, Math.floor((this.height * this.area) / this.lineHeight));
    this.lanes = Math.max(1, Math.min(this.askedLanes ?? fit, total));
    this.rows = Array.from({ length: total }, (_, i) => this.rows[i] ?? { scroll: [], fixed: null, claim: null });
    this.speed = this.askedSpeed ?? Math.max(60, this.width / 8);
  }

  /** Change how long identical danmaku merge (0: never); the room's setting changed. @param {number} ms */
  setMerge(ms) {
    this.mergeMs = Math.max(0, ms);
    if (!this.mergeMs) this.merging.clear();
  }

  /** Show a danmaku event (PROTOCOL.md, "Events in batches") when a lane is free. @param {any} event */
  add(event) {
    const role = event.user?.role;
    const priority = role === "host" || role === "moderator" || Boolean(event.highlight);
    const count = typeof event.count === "number" && event.count > 1 ? event.count : 1;
    const now = Number(document.timeline.currentTime ?? performance.now());
    const key = this.mergeMs && !priority ? mergeKey(event.text) : "";
    const merge = key ? this.merging.get(key) : undefined;
    if (merge && now < merge.until) {
      merge.item.count += count;
      merge.ids.add(String(event.id ?? ""));
      this.mergedIds.set(String(event.id ?? ""), merge);
      this.merged += count;
      this._badge(merge.item);
      return;
    }
    /** @type {Item} */
    const item = { event, priority, count };
    if (key) {
      item.merge = { item, until: now + this.mergeMs, ids: new Set() };
      this.merging.set(key, item.merge);
    }
    if (priority) {
      const at = this.queue.findIndex((q) => !q.priority);
      this.queue.splice(at === -1 ? this.queue.length : at, 0, item);
    } else {
      this.queue.push(item);
    }
    while (this.queue.length > this.maxQueue) {
      // the oldest regular one goes first; hosts' stay while any regular one is left
      const at = this.queue.findIndex((q) => !q.priority);
      const [gone] = this.queue.splice(at === -1 ? 0 : at, 1);
      this._forget(gone);
      this.dropped += gone.count;
    }
    this._schedule();
  }

  /** Take a danmaku off the screen and out of the queue (a moderator retracted it). @param {string} id */
  remove(id) {
    const merge = this.mergedIds.get(id);
    if (merge) {
      // one of several merged into an item: the item's count goes down, it stays
      this.mergedIds.delete(id);
      merge.ids.delete(id);
      merge.item.count = Math.max(1, merge.item.count - 1);
      this._badge(merge.item);
      return;
    }
    for (const item of this.queue.filter((q) => String(q.event.id ?? "") === id)) this._forget(item);
    this.queue = this.queue.filter((q) => String(q.event.id ?? "") !== id);
    const held = this.live.get(id);
    if (held) {
      held.animation.cancel();
      held.el.remove();
      this.live.delete(id);
    }
  }

  clear() {
    for (const item of this.queue) this._forget(item);
    this.queue = [];
    for (const { animation, el } of this.live.values()) {
      animation.cancel();
      el.remove();
    }
    this.live.clear();
    this.merging.clear();
    this.mergedIds.clear();
  }

  _schedule() {
    if (this._frame) return;
    this._frame = requestAnimationFrame(() => {
      this._frame = 0;
      // the document timeline's time: the animations placed now start at exactly this time
      this._drain(Number(document.timeline.currentTime ?? performance.now()));
      if (this.queue.length) this._schedule();
    });
  }

  /** Place what fits now, in the queue's order; what does not fit waits. @param {number} now */
  _drain(now) {
    for (const row of this.rows) {
      row.scroll = row.scroll.filter((s) => now < s.start + ((this.width + s.width) / this.speed) * 1000);
      if (row.fixed && row.fixed.until <= now) row.fixed = null;
    }
    for (let i = 0; i < this.queue.length && this.live.size < this.maxOnScreen; ) {
      const item = this.queue[i];
      const mode = item.event.mode;
      const placed = mode === "top" || mode === "bottom" ? this._fixed(item, now) : this._scroll(item, now);
      if (!placed) {
        i += 1;
        continue;
      }
      this.queue.splice(i, 1);
      this.shown += 1;
    }
  }

  /** @param {Item} item */
  _element(item) {
    const { event } = item;
    const el = document.createElement("div");
    el.className = `danmaku danmaku-${event.mode === "top" || event.mode === "bottom" ? event.mode : "scroll"}`;
    const role = event.user?.role;
    if (role === "host" || role === "moderator") el.classList.add("danmaku-staff");
    el.dataset.id = String(event.id ?? "");
    el.style.setProperty("--color", cssColor(event.color, "#ffffff"));
    // Staff are marked by the role the server set, never by their name.
    const badge = staffBadge(event.user);
    if (badge) el.append(badge, " ");
    // User text is data: a text node, never markup.
    el.append(document.createTextNode(String(event.text ?? "")));
    item.el = el;
    this._badge(item);
    return el;
  }

  /** Show an item's count: "×37" after its text, and `data-count`. @param {Item} item */
  _badge(item) {
    const el = item.el;
    if (!el) return;
    el.dataset.count = String(item.count);
    let badge = /** @type {HTMLElement | null} */ (el.querySelector(".danmaku-count"));
    if (item.count > 1) {
      if (!badge) {
        badge = document.createElement("span");
        badge.className = "danmaku-count";
        el.append(badge);
      }
      badge.textContent = ` ×${item.count > 9999 ? "9999+" : item.count}`;
    } else {
      badge?.remove();
    }
  }

  /** Room kept for a growing badge: while the item can still merge. @param {Item} item @param {number} now */
  _room(item, now) {
    return item.merge && now < item.merge.until ? Math.round(BADGE_EM * this.fontPx) : 0;
  }

  /** Whether a scrolling danmaku that starts now may enter a row. @param {Row} row @param {number} now */
  _scrollFits(row, now) {
    if (row.claim) return false;
    const last = row.scroll[row.scroll.length - 1];
    if (last && now - last.start < ((last.width + this.gap) / this.speed) * 1000) return false;
    // its head reaches the fixed one's right edge (less the gap) only after it has gone
    return !row.fixed || now + ((this.width - row.fixed.right - this.gap) / this.speed) * 1000 >= row.fixed.until;
  }

  /** @param {Item} item @param {number} now */
  _scroll(item, now) {
    const lane = this.rows.slice(0, this.lanes).findIndex((row) => this._scrollFits(row, now));
    if (lane === -1) return false;
    const el = item.el ?? this._element(item);
    el.dataset.lane = String(lane);
    el.style.top = `${lane * this.lineHeight}px`;
    el.style.transform = `translateX(${this.width}px)`;
    this.root.append(el);
    const width = el.offsetWidth + this._room(item, now);
    this.rows[lane].scroll.push({ start: now, width });
    const distance = this.width + width;
    const animation = el.animate(
      [{ transform: `translateX(${this.width}px)` }, { transform: `translateX(${-width}px)` }],
      { duration: (distance / this.speed) * 1000, easing: "linear", fill: "forwards" },
    );
    // where it is at any time is what the row's bookkeeping says, even when the page is
    // too busy to start the animation on the next frame
    animation.startTime = now;
    this._track(item, el, animation);
    return true;
  }

  /** Whether a fixed danmaku from `left` to `right` may stand in a row from now. @param {Row} row @param {number} left @param {number} right @param {number} now */
  _fixedFits(row, left, right, now) {
    if (row.fixed) return false;
    const until = now + this.fixedMs + SLACK_MS;
    const v = this.speed / 1000;
    // a scrolling one is in [left - gap, right + gap] from when its head passes the right
    // end until its tail passes the left end
    return row.scroll.every((s) => s.start + (this.width - right - this.gap) / v >= until || s.start + (this.width + s.width + this.gap - left) / v <= now);
  }

  /** @param {Item} item @param {number} now */
  _fixed(item, now) {
    if (item.width === undefined) {
      const el = item.el ?? this._element(item);
      el.style.visibility = "hidden";
      this.root.append(el);
      item.width = el.offsetWidth;
      el.remove();
      el.style.visibility = "";
    }
    const width = Math.min(this.width, item.width + this._room(item, now));
    const left = (this.width - width) / 2;
    const right = left + width;
    const total = this.rows.length;
    const half = Math.ceil(total / 2);
    // top: the upper half of the rows, from the top; bottom: the lower half, from the bottom
    const order = item.event.mode === "top" ? [...Array(half).keys()] : [...Array(Math.max(1, total - half)).keys()].map((i) => total - 1 - i);
    const open = (/** @type {number} */ r) => !this.rows[r].claim || this.rows[r].claim === item;
    const lane = order.find((r) => open(r) && this._fixedFits(this.rows[r], left, right, now));
    if (lane === undefined) {
      if (!item.claim || !this.rows.includes(item.claim)) this._claim(item, order.filter(open), left, now);
      return false;
    }
    this._release(item);
    // held a little longer than shown: the animation starts on a later frame, and the
    // element (faded out) stays until it finishes
    this.rows[lane].fixed = { until: now + this.fixedMs + SLACK_MS, left, right };
    const el = item.el ?? this._element(item);
    el.dataset.lane = String(lane);
    el.style.top = `${lane * this.lineHeight}px`;
    this.root.append(el);
    const animation = el.animate([{ opacity: 1 }, { opacity: 1, offset: 0.9 }, { opacity: 0 }], {
      duration: this.fixedMs,
      fill: "forwards",
    });
    animation.startTime = now;
    this._track(item, el, animation);
    return true;
  }

  /**
   * Claim for a fixed danmaku the row (of `rows`) that clears first: when its fixed one
   * has gone and its scrolling ones have passed the box's left end.
   * @param {Item} item @param {number[]} rows @param {number} left @param {number} now
   */
  _claim(item, rows, left, now) {
    const v = this.speed / 1000;
    /** @param {Row} row */
    const clears = (row) => Math.max(row.fixed?.until ?? now, ...row.scroll.map((s) => s.start + (this.width + s.width + this.gap - left) / v));
    let best = -1;
    let soonest = Infinity;
    for (const r of rows) {
      const at = clears(this.rows[r]);
      if (at < soonest) [best, soonest] = [r, at];
    }
    if (best === -1) return;
    this.rows[best].claim = item;
    item.claim = this.rows[best];
  }

  /** A fixed danmaku no longer waits for the row it claimed. @param {Item} item */
  _release(item) {
    if (item.claim?.claim === item) item.claim.claim = null;
    item.claim = undefined;
  }

  /** An item that leaves (dropped, retracted, gone): nothing merges into it any more. @param {Item} item */
  _forget(item) {
    this._release(item);
    const merge = item.merge;
    if (!merge) return;
    for (const id of merge.ids) this.mergedIds.delete(id);
    const key = mergeKey(item.event.text);
    if (this.merging.get(key) === merge) this.merging.delete(key);
  }

  /** @param {Item} item @param {HTMLElement} el @param {Animation} animation */
  _track(item, el, animation) {
    const id = String(item.event.id ?? `local-${this.shown}`);
    this.live.get(id)?.el.remove(); // the same event twice (a replay after a resync)
    this.live.set(id, { el, animation });
    animation.onfinish = () => {
      el.remove();
      this._forget(item);
      if (this.live.get(id)?.el === el) this.live.delete(id);
      if (this.queue.length) this._schedule();
    };
  }
}
