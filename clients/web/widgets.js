// Pieces that the pages and the kinds' modules (kinds/*.js) draw with and that are about
// no kind in particular: bars that update in place, form fields, ids and text helpers,
// which interaction of a kind a screen shows, and keeping elements in order without
// moving the ones already in place.
//
// Elements carry data attributes the pages' tests read: `data-option` and `data-count`
// (the exact count) on bars.

import { formatNumber, formatShare, h, t } from "/static/common.js";

/**
 * One bar: `share` is the bar's fill (0..1); `shareText` replaces the share's text
 * (formatShare(share) by default); `leading` marks the leader.
 * @typedef {{id: string, label: string, count: number, share: number, shareText?: string, leading?: boolean}} BarRow
 */

/**
 * A list of labelled bars that updates in place: the rows are built again only when
 * their ids or labels change, so bars glide from one state message to the next.
 */
export class Bars {
  /** @param {{class?: string, plain?: boolean}} [options] `plain`: the count alone, no share and no bar */
  constructor(options = {}) {
    this.plain = options.plain ?? false;
    this.el = h("ol", { class: options.class ? `bars ${options.class}` : "bars" });
    /** @type {string | null} */
    this.key = null;
    /** @type {Map<string, {row: HTMLElement, count: HTMLElement, share: HTMLElement | null, bar: HTMLElement | null}>} */
    this.rows = new Map();
  }

  /** @param {BarRow[]} rows */
  update(rows) {
    const key = JSON.stringify(rows.map((r) => [r.id, r.label]));
    if (key !== this.key) this._build(rows, key);
    for (const row of rows) {
      const held = this.rows.get(row.id);
      if (!held) continue;
      held.count.textContent = formatNumber(row.count);
      held.count.dataset.count = String(row.count);
      if (held.share) held.share.textContent = row.shareText ?? formatShare(row.share);
      held.bar?.style.setProperty("--share", String(Math.max(0, Math.min(1, row.share))));
      held.row.classList.toggle("leading", Boolean(row.leading));
    }
  }

  /** @param {BarRow[]} rows @param {string} key */
  _build(rows, key) {
    this.key = key;
    this.rows.clear();
    this.el.replaceChildren();
    for (const row of rows) {
      const count = h("span", { class: "count" });
      const share = this.plain ? null : h("span", { class: "share" });
      const bar = this.plain ? null : h("span", { class: "bar", aria: { hidden: "true" } });
      const li = h(
        "li",
        { class: "bar-row", data: { option: row.id } },
        h("span", { class: "label", text: row.label }),
        h("span", { class: "figures" }, count, share),
        bar ? h("span", { class: "track", aria: { hidden: "true" } }, bar) : null,
      );
      this.rows.set(row.id, { row: li, count, share, bar });
      this.el.append(li);
    }
  }
}

// --- forms ---------------------------------------------------------------------------------

/** A labelled control. @param {string} id @param {string} key the label's word @param {Node} control */
export const field = (id, key, control) => h("div", { class: "field" }, h("label", { attrs: { for: id }, text: t(key) }), control);

/** @param {string} id @param {string} key @param {Record<string, any>} [attrs] */
export const input = (id, key, attrs = {}) => field(id, key, h("input", { attrs: { id, name: id, ...attrs } }));

/** A composer's title field, `f-title`. */
export const titleField = () => input("f-title", "console.titlefield", { required: true, maxlength: 100 });

/**
 * @param {string} id @param {string} key
 * @param {string[][]} options [value, word][]
 * @param {{name?: string, value?: string}} [how] the form name (default the id) and the chosen value
 */
export const select = (id, key, options, how = {}) =>
  field(
    id,
    key,
    h(
      "select",
      { attrs: { id, name: how.name ?? id } },
      ...options.map(([value, label]) => h("option", { attrs: { value }, selected: how.value === value, text: t(label) })),
    ),
  );

/** @param {string} id @param {string} key */
export const checkbox = (id, key) => h("label", { class: "inline", attrs: { for: id } }, h("input", { attrs: { type: "checkbox", id, name: id } }), t(key));

/** @param {string} id @param {string} key @param {string} placeholder */
export const area = (id, key, placeholder) => field(id, key, h("textarea", { attrs: { id, name: id, rows: 4, placeholder } }));

/** The non-empty lines of a text. @param {string} text */
export const lines = (text) => text.split("\n").map((l) => l.trim()).filter(Boolean);

/** The items of a comma-separated list (also ，and 、). @param {string} text */
export const items = (text) => text.split(/[,，、]/).map((x) => x.trim()).filter(Boolean);

/** The non-empty lines of a text, each cut at `|` into trimmed cells. @param {string} text */
export const rows = (text) => lines(text).map((line) => line.split("|").map((x) => x.trim()));

/** Labels as options with ids `o1`, `o2`, …. @param {string[]} labels */
export const choicesOf = (labels) => labels.map((label, i) => ({ id: `o${i + 1}`, label }));

/**
 * Options from lines "label" or "label (code/code)": the codes in brackets are what a
 * danmaku may say to choose the option (PROTOCOL.md, "Votes by danmaku").
 * @param {string[]} labels
 */
export const codedChoicesOf = (labels) =>
  labels.map((text, i) => {
    const found = /^(.*?)\s*[(（]([^()（）]*)[)）]\s*$/.exec(text);
    const codes = found ? found[2].split(/[/／]/).map((c) => c.trim()).filter(Boolean) : [];
    return { id: `o${i + 1}`, label: found?.[1] || text, ...(codes.length ? { codes } : {}) };
  });

/**
 * What to type to choose an option by danmaku, to show beside its label ("1 / A"), or "";
 * codes that are the label itself are left out.
 * @param {any} view @param {string} key @param {string} [label]
 */
export function danmakuCodes(view, key, label = "") {
  const codes = view.danmaku?.[key];
  if (!Array.isArray(codes)) return "";
  return codes.filter((c) => String(c).toLowerCase() !== label.toLowerCase()).slice(0, 3).join(" / ");
}

/** A new interaction id. @param {string} prefix */
export const newId = (prefix) => `${prefix}-${Date.now().toString(36)}`;

/** A short fingerprint of a hex digest for display. @param {string|null|undefined} hex */
export function shortHash(hex) {
  return hex ? `${hex.slice(0, 8)}…${hex.slice(-8)}` : "–";
}

// --- what a screen shows -------------------------------------------------------------------

/** When an interaction last moved (seconds), for choosing what a screen shows. @param {any} view */
function activityTime(view) {
  const s = view.status ?? view.state ?? {};
  return Math.max(s.revealed_at ?? 0, s.closed_at ?? 0, s.opened_at ?? 0, s.drawn_at ?? 0, s.asked_at ?? 0);
}

/** Whether `at` (seconds since the epoch; none: never) is less than `seconds` ago. @param {number | null | undefined} at @param {number} seconds */
export function within(at, seconds) {
  return Date.now() / 1000 - (at ?? 0) < seconds;
}

/**
 * The view a screen shows of several: the one that moved last of those open, or ended
 * less than `endedS` seconds ago; null when there is none. Drafts are never shown.
 * @param {any[]} views @param {number} endedS
 */
export function newest(views, endedS) {
  const shown = views.filter((view) => {
    const phase = view.status?.phase ?? view.state?.phase;
    if (phase === "draft") return false;
    return phase === "open" || within(activityTime(view), endedS);
  });
  return shown.sort((a, b) => activityTime(b) - activityTime(a))[0] ?? null;
}

/**
 * Put `elements` first in `container`, in this order, moving only those out of place:
 * moving an element that holds the focus (a field being typed in) would take it away.
 * @param {Element} container @param {Element[]} elements
 */
export function placeInOrder(container, elements) {
  /** @type {Element | null} */
  let previous = null;
  for (const el of elements) {
    const wanted = previous ? previous.nextElementSibling : container.firstElementChild;
    if (el !== wanted) {
      if (previous) previous.after(el);
      else container.prepend(el);
    }
    previous = el;
  }
}

/**
 * A card of the viewer page: `article.card.interaction` with `data-interaction`, a
 * heading and a body to fill.
 * @param {string} kind @param {string} id @param {string} title
 */
export function liveCard(kind, id, title) {
  const heading = h("h3", { class: "card-title", text: title });
  const body = h("div", { class: "card-body" });
  const el = h("article", { class: `card interaction kind-${kind}`, data: { interaction: id } }, heading, body);
  return { el, heading, body };
}
