// The host's run-sheet: the console's list of interactions is the event's agenda.
//
// The list runs in the room's `agenda` order (room settings, PROTOCOL.md "REST API"),
// then the interactions not in it, oldest first, then the standing ones (check-in,
// reactions, the wall). Each card can move up or down and be pushed to the screens
// (`on_screen`: the overlay and the wall then show that one; registry.js `pushedView`).
// "Next" pushes the next interaction after the one on screen and starts it when it is a
// draft (its kind module's `start` action). Only the card in hand is unfolded: the one
// just created, acted on, pushed or clicked, so a dozen interactions stay one screen.

import { h, t } from "/static/common.js";
import { kindOf, phaseOf, pushedView, titleOf } from "/static/registry.js";

/**
 * @typedef {object} RunSheetHow
 * @property {() => any} client  the open room's client
 * @property {(settings: Record<string, unknown>) => Promise<any>} saveSettings
 * @property {(iid: string, action: string) => Promise<any>} act  a host action
 * @property {() => void} redraw  draw the list again
 * @property {(text: string, level?: string) => void} notify
 */

/** @param {any[]} views */
const newest = (views) => views.reduce((a, b) => ((b.created_at ?? 0) >= (a?.created_at ?? 0) ? b : a), null);

export class RunSheet {
  /** @param {RunSheetHow} how */
  constructor(how) {
    this.how = how;
    /** the card in hand (unfolded); "" until the host picks one */
    this.selected = "";
  }

  /** @returns {Record<string, any>} */
  settings() {
    return this.how.client()?.snapshot?.room?.settings ?? {};
  }

  /**
   * The views in run order: the agenda's, then the others oldest first, then the standing ones.
   * @param {any[]} views
   */
  order(views) {
    const listed = this.settings().agenda;
    const agenda = /** @type {string[]} */ (Array.isArray(listed) ? listed : []);
    const place = new Map(agenda.map((id, i) => [id, i]));
    const group = (/** @type {any} */ v) => (kindOf(v)?.standing ? 2 : place.has(v.id) ? 0 : 1);
    return [...views].sort(
      (a, b) => group(a) - group(b) || (place.get(a.id) ?? 0) - (place.get(b.id) ?? 0) || (a.created_at ?? 0) - (b.created_at ?? 0),
    );
  }

  /** The interactions the run-sheet runs through (not the standing ones), in order. */
  items() {
    const views = [...(this.how.client()?.interactions?.values() ?? [])];
    return this.order(views.filter((v) => kindOf(v) && !kindOf(v)?.standing));
  }

  /** Whether a card is in hand: the one picked, else the one on screen, else the newest. @param {string} id */
  isOpen(id) {
    return id === (this.selected || this.settings().on_screen || newest(this.items())?.id || "");
  }

  /** @param {string} id */
  select(id) {
    this.selected = id;
    this.how.redraw();
  }

  /**
   * What a card's head shows of the run-sheet: its place, and for the card in hand the
   * moves and the screen toggle (a folded card is one line: its place and title).
   * @param {any} view
   */
  controls(view) {
    if (kindOf(view)?.standing) return [];
    const items = this.items();
    const at = items.findIndex((v) => v.id === view.id);
    const onScreen = this.settings().on_screen === view.id;
    const place = h("span", { class: onScreen ? "run-n on-screen" : "run-n", attrs: { title: onScreen ? t("run.onscreen") : "" }, text: `${at + 1}` });
    if (!this.isOpen(view.id)) return [place];
    const move = (/** @type {number} */ by, /** @type {string} */ label, /** @type {string} */ text) =>
      h("button", {
        class: "secondary small",
        attrs: { type: "button", title: t(label) },
        aria: { label: t(label) },
        data: { run: by < 0 ? "up" : "down" },
        disabled: at + by < 0 || at + by >= items.length,
        text,
        on: { click: () => this.move(view.id, by) },
      });
    return [
      place,
      move(-1, "run.up", "↑"),
      move(1, "run.down", "↓"),
      h("button", {
        class: onScreen ? "small on-screen" : "secondary small",
        attrs: { type: "button" },
        aria: { pressed: onScreen ? "true" : "false" },
        data: { run: "screen" },
        text: onScreen ? t("run.onscreen") : t("run.push"),
        on: { click: () => this.push(onScreen ? "" : view.id) },
      }),
    ];
  }

  /** The bar above the list: what the screens show, back to automatic, and Next. */
  bar() {
    const pushed = pushedView(this.how.client());
    return [
      h("p", {
        class: "run-status",
        attrs: { role: "status" },
        data: { onScreen: pushed?.id ?? "" },
        text: pushed ? t("run.showing", { title: titleOf(pushed) }) : t("run.auto"),
      }),
      pushed ? h("button", { class: "secondary", attrs: { type: "button" }, data: { run: "auto" }, text: t("run.toauto"), on: { click: () => this.push("") } }) : null,
      h("button", { attrs: { type: "button", id: "run-next" }, text: t("run.next"), on: { click: () => this.next() } }),
    ].filter((el) => el !== null);
  }

  /** Move an interaction up (-1) or down (+1) the run-sheet. @param {string} id @param {number} by */
  async move(id, by) {
    const ids = this.items().map((v) => v.id);
    const at = ids.indexOf(id);
    if (at < 0 || at + by < 0 || at + by >= ids.length) return;
    [ids[at], ids[at + by]] = [ids[at + by], ids[at]];
    await this.how.saveSettings({ agenda: ids });
  }

  /** Push an interaction to the screens ("": back to what moved last). @param {string} id */
  async push(id) {
    if (id) this.selected = id;
    await this.how.saveSettings({ on_screen: id });
  }

  /** Push the next interaction after the one on screen (the first if none) and start it if it is a draft. */
  async next() {
    const items = this.items();
    const current = this.settings().on_screen;
    const at = items.findIndex((v) => v.id === current);
    const next = items[at + 1];
    if (!next) {
      this.how.notify(t("run.end"), "warn");
      return;
    }
    this.selected = next.id;
    await this.how.saveSettings({ on_screen: next.id, agenda: items.map((v) => v.id) });
    const start = kindOf(next)?.start;
    if (start && phaseOf(next) === "draft") await this.how.act(next.id, start);
    this.how.redraw();
  }
}

/** The run-sheet's words, for i18n.js. */
export const RUN_WORDS = {
  en: {
    "run.up": "Move up",
    "run.down": "Move down",
    "run.push": "Show on screens",
    "run.onscreen": "On screens ✓",
    "run.showing": "Screens show: {title}",
    "run.auto": "Screens show what moved last",
    "run.toauto": "Back to automatic",
    "run.next": "Next ▶",
    "run.end": "That was the last one on the run-sheet.",
  },
  zh: {
    "run.up": "上移",
    "run.down": "下移",
    "run.push": "投到屏幕",
    "run.onscreen": "屏幕上 ✓",
    "run.showing": "屏幕显示：{title}",
    "run.auto": "屏幕自动显示最新的互动",
    "run.toauto": "恢复自动",
    "run.next": "下一个 ▶",
    "run.end": "已经是流程的最后一项。",
  },
};
