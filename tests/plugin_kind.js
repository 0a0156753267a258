// The page module of the test plug-in kind "estimate" (tests/plugin_kind.py): viewers
// guess a number, the console follows the guesses and reveals the answer. Written against
// the same contract as the built-in kinds (clients/web/registry.js, `KindModule`), and
// served by the server from here, where the kind says it lives.

import { formatNumber, h, replace, t } from "/static/common.js";
import { liveCard } from "/static/widgets.js";

/** @param {any} view */
const summary = (view) =>
  t("estimate.summary", { n: formatNumber(view.guesses ?? 0), mean: view.mean === null || view.mean === undefined ? "–" : String(view.mean) });

/** @type {import("/static/registry.js").KindModule} */
export default {
  kind: "estimate",
  order: 55,
  title: (view) => view.spec?.question ?? view.id,

  live: (ctx) => ({
    shown: (view) => view.status?.phase !== "draft",
    card(view) {
      const { el, body } = liveCard("estimate", view.id, view.spec?.question ?? view.id);
      const inputId = `${view.id}-guess`;
      const input = h("input", { attrs: { id: inputId, type: "number", name: "value", step: "any" } });
      const form = h("form", { class: "row" }, h("label", { attrs: { for: inputId }, text: t("estimate.label") }), input, h("button", { attrs: { type: "submit" }, text: t("estimate.send") }));
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const value = Number(/** @type {HTMLInputElement} */ (input).value);
        ctx.act(el, () => ctx.client.participate("guess", { interaction: view.id, value }), () => {
          ctx.mine[view.id] = { guessed: value };
        });
      });
      const status = h("p", { class: "muted-text", attrs: { role: "status" } });
      body.append(form, status);
      return {
        el,
        /** @param {any} next */
        update(next) {
          form.hidden = next.status?.phase !== "open";
          const mine = ctx.mine[next.id]?.guessed;
          const answer = next.spec?.answer;
          replace(
            status,
            summary(next),
            mine !== undefined ? ` · ${t("estimate.yours", { value: String(mine) })}` : "",
            answer !== undefined ? ` · ${t("estimate.answer", { value: String(answer) })}` : "",
          );
          status.dataset.count = String(next.guesses ?? 0);
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
          el.textContent = summary(view);
          el.dataset.count = String(view.guesses ?? 0);
        },
      };
    },
    actions(view) {
      const phase = view.status?.phase;
      const next = { draft: "open", open: "close", closed: "reveal" }[/** @type {string} */ (phase)];
      return next ? [ctx.button(view.id, next)] : [];
    },
  }),

  words: {
    en: {
      "kind.estimate": "Estimate",
      "estimate.label": "Your guess",
      "estimate.send": "Guess",
      "estimate.summary": "{n} guesses, mean {mean}",
      "estimate.yours": "yours: {value}",
      "estimate.answer": "answer: {value}",
    },
    zh: {
      "kind.estimate": "猜数字",
      "estimate.label": "你的猜测",
      "estimate.send": "提交",
      "estimate.summary": "{n} 人已猜，平均 {mean}",
      "estimate.yours": "你猜的是 {value}",
      "estimate.answer": "答案：{value}",
    },
  },
};
