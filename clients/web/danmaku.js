// Danmaku in lanes without overlap, at a steady frame rate (the overlay, and the
// viewer page's stage).
//
// Scrolling danmaku all move at one speed (px/s), right to left, so one that entered a
// lane after another can never catch up with it: a lane is free for the next one as
// soon as the last one's tail is `gap` pixels inside the screen. Top and bottom
// danmaku stand still, centred, for `fixedMs`, one per lane. When no lane is free a
// danmaku waits in a short queue (hosts' and moderators' first) and the oldest waiting
// ones are dropped: the screen shows what it can, it never piles up. The number of
// elements on screen is bounded by `maxOnScreen`, so the DOM stays small at any rate.
//
// Motion is one Web Animation per danmaku on `transform` (the compositor moves it; no
// layout per frame), and the queue is drained on animation frames.

import { cssColor } from "/static/common.js";

/**
 * @typedef {object} LaneOptions
 * @property {number} [lanes]        scrolling lanes (default: as many as fit in `area`)
 * @property {number} [fontPx]       danmaku size in px (default 32)
 * @property {number} [speed]        scrolling speed in px/s (default: the width in 8 s)
 * @property {number} [area]         share of the height the scrolling lanes use (0..1, default 0.8)
 * @property {number} [gap]          px between danmaku in a lane (default fontPx)
 * @property {number} [fixedMs]      how long top and bottom danmaku stay (default 4000)
 * @property {number} [maxQueue]     danmaku waiting for a lane (default 50)
 * @property {number} [maxOnScreen]  elements on screen at most (default 160)
 */

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
    this.maxQueue = options.maxQueue ?? 50;
    this.maxOnScreen = options.maxOnScreen ?? 160;
    this.askedLanes = options.lanes;
    this.askedSpeed = options.speed;
    /** @type {Array<{event: any, priority: boolean}>} */
    this.queue = [];
    /** @type {Map<string, {el: HTMLElement, animation: Animation}>} */
    this.live = new Map();
    this.shown = 0;
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
    const fit = Math.max(1, Math.floor((this.height * this.area) / this.lineHeight));
    const count = Math.max(1, Math.min(this.askedLanes ?? fit, Math.floor(this.height / this.lineHeight)));
    // Per scrolling lane: when its last danmaku started and how wide it is.
    this.lanes = Array.from({ length: count }, (_, i) => this.lanes?.[i] ?? { start: -Infinity, width: 0 });
    const fixedCount = Math.max(1, Math.floor(this.height / this.lineHeight / 3));
    this.top = Array.from({ length: fixedCount }, (_, i) => this.top?.[i] ?? { until: 0 });
    this.bottom = Array.from({ length: fixedCount }, (_, i) => this.bottom?.[i] ?? { until: 0 });
    this.speed = this.askedSpeed ?? Math.max(60, this.width / 8);
  }

  /** Show a danmaku event (PROTOCOL.md, "Events in batches") when a lane is free. @param {any} event */
  add(event) {
    const role = event.user?.role;
    const priority = role === "host" || role === "moderator" || Boolean(event.highlight);
    if (priority) {
      const at = this.queue.findIndex((q) => !q.priority);
      this.queue.splice(at === -1 ? this.queue.length : at, 0, { event, priority });
    } else {
      this.queue.push({ event, priority });
    }
    while (this.queue.length > this.maxQueue) {
      // the oldest regular one goes first; hosts' stay while any regular one is left
      const at = this.queue.findIndex((q) => !q.priority);
      this.queue.splice(at === -1 ? 0 : at, 1);
      this.dropped += 1;
    }
    this._schedule();
  }

  /** Take a danmaku off the screen and out of the queue (a moderator retracted it). @param {string} id */
  remove(id) {
    this.queue = this.queue.filter((q) => q.event.id !== id);
    const held = this.live.get(id);
    if (held) {
      held.animation.cancel();
      held.el.remove();
      this.live.delete(id);
    }
  }

  clear() {
    this.queue = [];
    for (const { animation, el } of this.live.values()) {
      animation.cancel();
      el.remove();
    }
    this.live.clear();
  }

  _schedule() {
    if (this._frame) return;
    this._frame = requestAnimationFrame(() => {
      this._frame = 0;
      this._drain(performance.now());
      if (this.queue.length) this._schedule();
    });
  }

  /** @param {number} now */
  _drain(now) {
    while (this.queue.length && this.live.size < this.maxOnScreen) {
      const { event } = this.queue[0];
      const placed = event.mode === "top" || event.mode === "bottom" ? this._fixed(event, now) : this._scroll(event, now);
      if (!placed) return;
      this.queue.shift();
      this.shown += 1;
    }
  }

  /** @param {any} event */
  _element(event) {
    const el = document.createElement("div");
    el.className = `danmaku danmaku-${event.mode ?? "scroll"}`;
    const role = event.user?.role;
    if (role === "host" || role === "moderator") el.classList.add("danmaku-staff");
    el.dataset.id = String(event.id ?? "");
    el.style.setProperty("--color", cssColor(event.color, "#ffffff"));
    // User text is data: a text node, never markup.
    const count = typeof event.count === "number" && event.count > 1 ? ` ×${event.count}` : "";
    el.textContent = `${event.text ?? ""}${count}`;
    return el;
  }

  /** @param {any} event @param {number} now */
  _scroll(event, now) {
    const lane = this.lanes.findIndex((l) => now - l.start >= ((l.width + this.gap) / this.speed) * 1000);
    if (lane === -1) return false;
    const el = this._element(event);
    el.dataset.lane = String(lane);
    el.style.top = `${lane * this.lineHeight}px`;
    el.style.transform = `translateX(${this.width}px)`;
    this.root.append(el);
    const width = el.offsetWidth;
    this.lanes[lane] = { start: now, width };
    const distance = this.width + width;
    const animation = el.animate(
      [{ transform: `translateX(${this.width}px)` }, { transform: `translateX(${-width}px)` }],
      { duration: (distance / this.speed) * 1000, easing: "linear", fill: "forwards" },
    );
    this._track(event, el, animation);
    return true;
  }

  /** @param {any} event @param {number} now */
  _fixed(event, now) {
    const lanes = event.mode === "top" ? this.top : this.bottom;
    const lane = lanes.findIndex((l) => l.until <= now);
    if (lane === -1) return false;
    lanes[lane].until = now + this.fixedMs;
    const el = this._element(event);
    el.dataset.lane = `${event.mode}-${lane}`;
    if (event.mode === "top") el.style.top = `${lane * this.lineHeight}px`;
    else el.style.bottom = `${lane * this.lineHeight}px`;
    this.root.append(el);
    const animation = el.animate([{ opacity: 1 }, { opacity: 1, offset: 0.9 }, { opacity: 0 }], {
      duration: this.fixedMs,
      fill: "forwards",
    });
    this._track(event, el, animation);
    return true;
  }

  /** @param {any} event @param {HTMLElement} el @param {Animation} animation */
  _track(event, el, animation) {
    const id = String(event.id ?? `local-${this.shown}`);
    this.live.get(id)?.el.remove(); // the same event twice (a replay after a resync)
    this.live.set(id, { el, animation });
    animation.onfinish = () => {
      el.remove();
      if (this.live.get(id)?.el === el) this.live.delete(id);
      if (this.queue.length) this._schedule();
    };
  }
}
