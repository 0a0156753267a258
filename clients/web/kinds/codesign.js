// Co-design sessions (PROTOCOL.md, "Kinds, specs and host actions"): viewers pick one
// option per slot; the host locks slots and reveals the final design, one chosen option
// per slot. Every page draws the session with one DesignBoard (`data-design`, `data-slot`,
// `data-option`, `data-count`) and the final design with finalDesign (`.final-slot`).

import { formatShare, h, imageUrl, replace, t } from "/static/common.js";
import { Bars, area, checkbox, choicesOf, codedChoicesOf, danmakuCodes, items, liveCard, newest, newId, rows, titleField, within } from "/static/widgets.js";

/**
 * The final design: one chosen option per slot.
 * @param {{design: string, title?: string, slots: Array<{slot: string, label: string, option: string, option_label: string, image_url?: string|null, count: number, share: number}>}} final
 */
function finalDesign(final) {
  return h(
    "ol",
    { class: "final-design", data: { final: final.design } },
    ...final.slots.map((s) => {
      const src = imageUrl(s.image_url);
      return h(
        "li",
        { class: "final-slot", data: { slot: s.slot, option: s.option } },
        src ? h("img", { attrs: { src, alt: "" } }) : null,
        h("span", { class: "slot-label", text: s.label }),
        h("strong", { class: "option-label", text: s.option_label }),
        h("span", { class: "share", text: formatShare(s.share) }),
      );
    }),
  );
}

/** A session's slots and their leading options, bars updated in place; the final design once revealed. */
class DesignBoard {
  constructor() {
    this.el = h("section", { class: "design-board", aria: { live: "polite" } });
    /** @type {string | null} */
    this.key = null;
    /** @type {Map<string, Bars>} */
    this.bars = new Map();
  }

  /** @param {any} view */
  update(view) {
    this.el.dataset.design = view.id;
    this.el.dataset.phase = view.state?.phase ?? "";
    const slots = view.results?.slots ?? [];
    const key = JSON.stringify([view.id, view.spec?.title, view.final ?? null, slots.map((/** @type {any} */ s) => [s.id, s.label, Boolean(s.locked)])]);
    if (key !== this.key) this._build(view, slots, key);
    for (const slot of slots) {
      this.bars.get(slot.id)?.update(
        slot.options.map((/** @type {any} */ o) => ({
          id: o.id,
          label: [o.label, danmakuCodes(view, `${slot.id}:${o.id}`, o.label)].filter(Boolean).join(" · "), // what to type, when it takes danmaku
          count: o.count,
          share: o.share,
          leading: slot.picks > 0 && o.id === slot.leader,
        })),
      );
    }
  }

  /** @param {any} view @param {any[]} slots @param {string} key */
  _build(view, slots, key) {
    this.key = key;
    this.bars.clear();
    const title = h("h2", { class: "board-title", text: view.spec?.title ?? view.id });
    if (view.final) {
      replace(this.el, title, finalDesign(view.final));
      return;
    }
    const list = h("ol", { class: "slots" });
    for (const slot of slots) {
      const bars = new Bars();
      this.bars.set(slot.id, bars);
      list.append(
        h(
          "li",
          { class: `slot${slot.locked ? " locked" : ""}`, data: { slot: slot.id } },
          h("h3", { class: "slot-label" }, slot.label, slot.locked ? h("span", { class: "tag", text: t("codesign.locked") }) : null),
          bars.el,
        ),
      );
    }
    replace(this.el, title, list);
  }
}

/** The board on a screen: the newest session. @param {import("/static/registry.js").ScreenContext} ctx */
function screen(ctx) {
  const board = new DesignBoard();
  const el = ctx.frame(board.el);
  /** @param {any[]} views */
  const update = (views) => {
    const design = newest(views, ctx.showEndedS);
    if (design) board.update(design);
    el.hidden = !design;
  };
  return { el, name: "design", update, on: { designRevealed: () => update(ctx.views()) } };
}

/** The viewer's picks, one per slot; the final design once revealed. @param {import("/static/registry.js").LiveContext} ctx @param {any} view */
function picksCard(ctx, view) {
  const { el, heading, body } = liveCard("codesign", view.id, view.spec.title);
  const picks = h("div", { class: "picks" });
  body.append(picks);
  return {
    el,
    /** @param {any} next */
    update(next) {
      heading.textContent = next.spec.title;
      if (next.final) {
        replace(picks, h("p", { class: "tag ok", text: t("codesign.final") }), finalDesign(next.final));
        return;
      }
      const chosen = ctx.mine[next.id] ?? {};
      replace(picks);
      for (const slot of next.results?.slots ?? []) {
        const fieldset = h("fieldset", { class: `slot${slot.locked ? " locked" : ""}`, data: { slot: slot.id } }, h("legend", {}, slot.label, slot.locked ? h("span", { class: "tag", text: t("codesign.locked") }) : null));
        for (const option of slot.options) {
          const id = `${next.id}-${slot.id}-${option.id}`;
          const soldOut = option.left === 0 && chosen[slot.id] !== option.id;
          const radio = h("input", {
            attrs: { type: "radio", name: `${next.id}-${slot.id}`, id, value: option.id },
            checked: chosen[slot.id] === option.id,
            disabled: slot.locked || soldOut || next.state?.phase !== "open",
            on: {
              change: () =>
                ctx.act(el, () => ctx.client.pick(next.id, slot.id, option.id), () => {
                  ctx.mine[next.id] = { ...(ctx.mine[next.id] ?? {}), [slot.id]: option.id };
                }),
            },
          });
          fieldset.append(
            h(
              "label",
              { class: "choice", attrs: { for: id }, data: { option: option.id } },
              radio,
              h("span", { class: "grow", text: option.label }),
              h("span", { class: "share", text: `${Math.round(option.share * 100)}%` }),
              option.left !== null && option.left !== undefined ? h("span", { class: "tag", text: option.left === 0 ? t("codesign.soldout") : t("codesign.left", { n: option.left }) }) : null,
            ),
          );
        }
        picks.append(fieldset);
      }
    },
  };
}

/** @type {import("/static/registry.js").KindModule} */
export default {
  kind: "codesign",
  order: 30,
  start: "open",

  live: (ctx) => ({
    shown(view) {
      const s = view.state ?? {};
      return s.phase === "open" || (s.phase === "revealed" && within(s.revealed_at, ctx.showEndedS));
    },
    card: (view) => picksCard(ctx, view),
  }),

  console: (ctx) => ({
    composer: {
      fields: () => [titleField(), area("f-slots", "codesign.slots", "Bun | Sesame, Brioche\nSauce | Tomato, Mala"), checkbox("f-danmaku", "codesign.danmaku")],
      spec: (form) => {
        const byDanmaku = form.checked("f-danmaku");
        const options = byDanmaku ? codedChoicesOf : choicesOf;
        const slots = rows(form.text("f-slots")).map(([label, labels = ""], i) => ({ id: `s${i + 1}`, label, options: options(items(labels)) }));
        return { id: newId("design"), title: form.text("f-title"), slots, ...(byDanmaku ? { danmaku: true } : {}) };
      },
    },
    card() {
      const board = new DesignBoard();
      return { el: board.el, update: (view) => board.update(view) };
    },
    actions(view) {
      const phase = view.state?.phase ?? "draft";
      if (phase === "draft") return [ctx.button(view.id, "open")];
      if (phase === "closed") return [ctx.button(view.id, "reveal")];
      if (phase !== "open") return [];
      const unlocked = (view.results?.slots ?? []).filter((/** @type {any} */ slot) => !slot.locked);
      return [
        ...unlocked.map((/** @type {any} */ slot) =>
          ctx.button(view.id, "lock", { fields: { slot: slot.id }, text: `${t("action.lock")}: ${slot.label}`, class: "secondary", data: { slot: slot.id } }),
        ),
        ctx.button(view.id, "lock_all"),
      ];
    },
  }),

  overlay: screen,
  wall(ctx) {
    const widget = screen(ctx);
    /** @param {any} event a design_revealed event */
    const reveal = (event) => {
      widget.on.designRevealed();
      ctx.reveal?.({ kicker: t("codesign.reveal"), title: event.final?.title ?? "", body: finalDesign(event.final), id: event.interaction });
    };
    return { ...widget, on: { designRevealed: reveal } };
  },

  words: {
    en: {
      "kind.codesign": "Co-design",
      "codesign.locked": "Locked",
      "codesign.left": "{n} left",
      "codesign.soldout": "Sold out",
      "codesign.final": "The final design",
      "codesign.reveal": "Final design",
      "codesign.slots": "Slots: “slot | option, option, …”, one per line",
      "codesign.danmaku": "Picks by danmaku (an option's label or a word of it; own codes in brackets: “Red (红围巾/#red)”)",
      "action.lock": "Lock",
      "action.lock_all": "Lock all",
    },
    zh: {
      "kind.codesign": "共创",
      "codesign.locked": "已锁定",
      "codesign.left": "剩余 {n}",
      "codesign.soldout": "已售罄",
      "codesign.final": "最终设计",
      "codesign.reveal": "最终设计",
      "codesign.slots": "槽位：“槽位 | 选项, 选项, …”，每行一个",
      "codesign.danmaku": "弹幕选择（发选项名或其中一个词；自定口令写在括号里：“红色 (红围巾/#红)”）",
      "action.lock": "锁定",
      "action.lock_all": "全部锁定",
    },
  },
};
