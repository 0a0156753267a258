// The room's check-in (PROTOCOL.md, "checkin"): every room has one, open from the start.
// Viewers check in once; the console opens and closes it and exports the list; the wall
// counts (`#checkins`, with `data-count`).

import { formatNumber, h, replace, t } from "/static/common.js";
import { liveCard } from "/static/widgets.js";

/** The server names it "Check-in": the viewer reads that in its language. @param {any} view */
const heading = (view) => (view.spec?.title === "Check-in" || !view.spec?.title ? t("checkin.button") : view.spec.title);

/** @type {import("/static/registry.js").KindModule} */
export default {
  kind: "checkin",
  order: 60,
  standing: true,

  live: (ctx) => ({
    shown: (view) => view.status?.phase === "open",
    card(view) {
      const { el, body } = liveCard("checkin", view.id, heading(view));
      return {
        el,
        /** @param {any} next */
        update(next) {
          const done = Boolean(ctx.mine[next.id]?.done);
          replace(
            body,
            h("button", {
              attrs: { type: "button" },
              disabled: done || next.status?.phase !== "open",
              text: done ? t("checkin.done") : t("checkin.button"),
              on: { click: () => ctx.act(el, () => ctx.client.checkin(), () => { ctx.mine[next.id] = { done: true }; }) },
            }),
            h("span", { class: "muted-text", data: { count: next.count }, text: ` ${t("checkin.count", { n: formatNumber(next.count ?? 0) })}` }),
          );
        },
      };
    },
  }),

  console: (ctx) => ({
    card() {
      const el = h("p", { class: "big" });
      return {
        el,
        /** @param {any} view */
        update(view) {
          el.textContent = formatNumber(view.count ?? 0);
          el.dataset.count = String(view.count);
        },
      };
    },
    actions: (view) => [
      ctx.button(view.id, view.status?.phase === "open" ? "close" : "open"),
      h("button", {
        class: "secondary",
        attrs: { type: "button" },
        text: t("action.export"),
        on: { click: () => ctx.download(`/interactions/${encodeURIComponent(view.id)}/export?format=csv`, "checkins.csv") },
      }),
    ],
  }),

  wall() {
    const count = h("dd", { attrs: { id: "checkins" }, data: { count: 0 }, text: "0" });
    return {
      el: h("div", {}, h("dt", { data: { i18n: "checkin.wall" }, text: t("checkin.wall") }), count),
      region: "counter",
      /** @param {any[]} views */
      update([view]) {
        if (!view) return;
        count.textContent = formatNumber(view.count ?? 0);
        count.dataset.count = String(view.count ?? 0);
      },
    };
  },

  words: {
    en: {
      "kind.checkin": "Check-in",
      "checkin.button": "Check in",
      "checkin.done": "Checked in ✓",
      "checkin.count": "{n} checked in",
      "checkin.wall": "checked in",
      "action.export": "Export CSV",
    },
    zh: {
      "kind.checkin": "签到",
      "checkin.button": "签到",
      "checkin.done": "已签到 ✓",
      "checkin.count": "{n} 人已签到",
      "checkin.wall": "人已签到",
      "action.export": "导出 CSV",
    },
  },
};
