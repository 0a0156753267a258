// The room's reactions (点赞): every room has one board, open from the start. Viewers tap
// hearts and emoji as fast as they like; the page sends the taps of a moment together
// (`react` with `count`, no idempotency key: taps are not retried). Each tick brings one
// `reaction` event with what the whole room tapped, which the overlay floats up the
// side of the stream; the console and the wall show the totals.

import { formatNumber, h, replace, t } from "/static/common.js";
import { liveCard } from "/static/widgets.js";

const SEND_EVERY_MS = 400; // a viewer's taps of this long go as one command
const MAX_BURST = 50; // what the server takes in one command
const MAX_FLOATING = 40; // hearts in the air on the overlay at once
const FLOAT_MS = 2600;

/** @param {any} view @returns {string[]} */
const emojiOf = (view) => (Array.isArray(view.spec?.emoji) ? view.spec.emoji : []);

/** The totals, emoji by emoji, with `data-count` for tests and screen readers. @param {any} view */
function totals(view) {
  return h(
    "ul",
    { class: "reaction-totals row" },
    ...emojiOf(view).map((emoji) =>
      h("li", { class: "tag", data: { emoji, count: view.counts?.[emoji] ?? 0 } }, `${emoji} ${formatNumber(view.counts?.[emoji] ?? 0)}`),
    ),
  );
}

/** One heart (or emoji) floating up from the bottom of `layer`, then gone. @param {HTMLElement} layer @param {string} emoji */
function float(layer, emoji) {
  if (layer.childElementCount >= MAX_FLOATING) return;
  const heart = h("span", { class: "floating-reaction", aria: { hidden: "true" }, text: emoji });
  Object.assign(heart.style, { position: "absolute", bottom: "0", right: `${Math.round(Math.random() * 60)}px`, fontSize: "2.2em" });
  layer.append(heart);
  const drift = Math.round((Math.random() - 0.5) * 80);
  const animation = heart.animate(
    [
      { transform: "translate(0, 0) scale(0.6)", opacity: 0 },
      { transform: `translate(${drift / 2}px, -25vh) scale(1)`, opacity: 1, offset: 0.2 },
      { transform: `translate(${drift}px, -60vh) scale(1.1)`, opacity: 0 },
    ],
    { duration: FLOAT_MS + Math.random() * 800, easing: "ease-out" },
  );
  animation.onfinish = () => heart.remove();
}

/** @type {import("/static/registry.js").KindModule} */
export default {
  kind: "reactions",
  order: 65,
  standing: true,
  title: () => t("reactions.title"),

  live: (ctx) => ({
    shown: (view) => view.status?.phase === "open",
    card(view) {
      const { el, body } = liveCard("reactions", view.id, t("reactions.title"));
      /** @type {Map<string, number>} */
      const taps = new Map();
      let timer = 0;
      const send = () => {
        timer = 0;
        for (const [emoji, n] of taps) {
          taps.delete(emoji);
          for (let left = n; left > 0; left -= MAX_BURST) {
            ctx.client.send("react", { emoji, count: Math.min(left, MAX_BURST) }).catch(() => {});
          }
        }
      };
      /** @param {string} emoji @param {HTMLElement} button */
      const tap = (emoji, button) => {
        taps.set(emoji, (taps.get(emoji) ?? 0) + 1);
        if (!timer) timer = window.setTimeout(send, SEND_EVERY_MS);
        button.animate([{ transform: "scale(1.35)" }, { transform: "scale(1)" }], { duration: 180 });
      };
      const buttons = h("div", { class: "row reaction-buttons" });
      const total = h("p", { class: "muted-text" });
      body.append(buttons, total);
      let drawn = "";
      return {
        el,
        /** @param {any} next */
        update(next) {
          const emoji = emojiOf(next);
          if (emoji.join(" ") !== drawn) {
            drawn = emoji.join(" ");
            replace(
              buttons,
              ...emoji.map((glyph) => {
                const button = h("button", { class: "secondary reaction", attrs: { type: "button", title: t("reactions.tap") }, data: { emoji: glyph }, text: glyph });
                button.addEventListener("click", () => tap(glyph, button));
                return button;
              }),
            );
          }
          total.textContent = t("reactions.total", { n: formatNumber(next.total ?? 0) });
          total.dataset.count = String(next.total ?? 0);
        },
        remove() {
          if (timer) clearTimeout(timer);
          send();
        },
      };
    },
  }),

  console: (ctx) => ({
    card() {
      const el = h("div", {});
      return {
        el,
        /** @param {any} view */
        update(view) {
          replace(el, h("p", { class: "big", data: { count: view.total ?? 0 }, text: formatNumber(view.total ?? 0) }), totals(view));
        },
      };
    },
    actions: (view) => [ctx.button(view.id, view.status?.phase === "open" ? "close" : "open")],
  }),

  overlay() {
    // A layer of its own up the right edge: hearts float over the stream, not in a box.
    const layer = h("div", { class: "reaction-layer", aria: { hidden: "true" } });
    Object.assign(layer.style, { position: "fixed", right: "2vw", bottom: "2vh", width: "120px", height: "70vh", pointerEvents: "none", overflow: "visible" });
    return {
      el: layer,
      on: {
        /** @param {{counts?: Record<string, number>}} event */
        reaction(event) {
          for (const [emoji, n] of Object.entries(event.counts ?? {})) {
            // Many taps in one tick: a few hearts each, spread over the tick.
            const shown = Math.min(n, 8);
            for (let i = 0; i < shown; i += 1) setTimeout(() => float(layer, emoji), i * 60);
          }
        },
      },
    };
  },

  wall() {
    const count = h("dd", { data: { count: 0 }, text: "0" });
    return {
      el: h("div", {}, h("dt", { text: t("reactions.wall") }), count),
      region: "counter",
      /** @param {any[]} views */
      update([view]) {
        if (!view) return;
        count.textContent = formatNumber(view.total ?? 0);
        count.dataset.count = String(view.total ?? 0);
      },
    };
  },

  words: {
    en: {
      "kind.reactions": "Reactions",
      "reactions.title": "Send some love",
      "reactions.tap": "Tap as often as you like",
      "reactions.total": "{n} reactions",
      "reactions.wall": "reactions",
    },
    zh: {
      "kind.reactions": "点赞",
      "reactions.title": "点赞互动",
      "reactions.tap": "想点多少下都行",
      "reactions.total": "{n} 个赞",
      "reactions.wall": "个赞",
    },
  },
};
