// Drawing interaction views (PROTOCOL.md, "Views") for every page: poll bars, co-design
// boards, draw results. Each board updates its DOM in place, so bars glide from one
// state message to the next instead of being rebuilt, and the same data gives the same
// figures on the console, the viewer page, the overlay and the wall.
//
// Elements carry data attributes the pages' tests read: `data-poll`, `data-option`,
// `data-count` (the exact count), `data-design`, `data-slot`, `data-winner`.

import { formatNumber, formatShare, h, imageUrl, replace, t } from "/static/common.js";

/**
 * Rows of a poll's results as {id, label, count, share, value}: the figure to show and
 * the bar's fill (0..1). Ranked polls show Borda points, rating polls their histogram.
 * @param {any} view
 */
export function pollRows(view) {
  const results = view.results ?? {};
  if (results.hidden) return [];
  const labels = new Map((view.spec?.options ?? []).map((o) => [o.id, o.label]));
  if (results.kind === "ranked") {
    const most = Math.max(1, ...(results.options ?? []).map((o) => o.points));
    return (results.options ?? []).map((o) => ({
      id: o.id,
      label: o.label,
      count: o.points,
      share: o.points / most,
    }));
  }
  if (results.kind === "rating") {
    const voters = Math.max(1, results.voters ?? 0);
    return (results.histogram ?? []).map((b) => ({
      id: String(b.rating),
      label: "★".repeat(Math.min(b.rating, 10)) || String(b.rating),
      count: b.count,
      share: b.count / voters,
    }));
  }
  if (results.kind === "text") return [];
  return (results.options ?? []).map((o) => ({
    id: o.id,
    label: o.label ?? labels.get(o.id) ?? o.id,
    count: o.count,
    share: o.share,
  }));
}

/** A poll's results that update in place. */
export class PollBoard {
  /** @param {{showTitle?: boolean}} [options] */
  constructor(options = {}) {
    this.showTitle = options.showTitle ?? true;
    this.el = h("section", { class: "poll-board", aria: { live: "polite" } });
    /** @type {string | null} */
    this.key = null;
    /** @type {Map<string, {row: HTMLElement, count: HTMLElement, share: HTMLElement, bar: HTMLElement}>} */
    this.rows = new Map();
  }

  /** @param {any} view */
  update(view) {
    const results = view.results ?? {};
    const rows = pollRows(view);
    const key = `${view.id}|${results.kind}|${results.hidden}|${rows.map((r) => r.id).join(",")}`;
    if (key !== this.key) this._build(view, rows, key);
    this.el.dataset.phase = view.status?.phase ?? "";
    this.voters.textContent = t("live.voters", { n: formatNumber(results.voters ?? 0) });
    this.voters.dataset.count = String(results.voters ?? 0);
    if (results.hidden) {
      this.hidden.textContent = t("live.results.hidden", { n: formatNumber(results.voters ?? 0) });
      return;
    }
    if (results.kind === "text") {
      this._cloud(results.terms ?? []);
      return;
    }
    if (results.kind === "rating" && this.mean) {
      this.mean.textContent = results.mean === null || results.mean === undefined ? "–" : `${results.mean}`;
    }
    const lead = Math.max(0, ...rows.map((r) => r.count));
    for (const row of rows) {
      const held = this.rows.get(row.id);
      if (!held) continue;
      held.count.textContent = formatNumber(row.count);
      held.count.dataset.count = String(row.count);
      held.share.textContent = results.kind === "ranked" ? "" : formatShare(row.share);
      held.bar.style.setProperty("--share", String(Math.max(0, Math.min(1, row.share))));
      held.row.classList.toggle("leading", row.count > 0 && row.count === lead);
    }
  }

  /** @param {any} view @param {ReturnType<typeof pollRows>} rows @param {string} key */
  _build(view, rows, key) {
    this.key = key;
    this.rows.clear();
    this.el.dataset.poll = view.id;
    const results = view.results ?? {};
    this.voters = h("span", { class: "voters" });
    const head = h(
      "header",
      { class: "board-head" },
      this.showTitle ? h("h2", { class: "board-title", text: view.spec?.question ?? view.id }) : null,
      this.voters,
    );
    const body = h("div", { class: "board-body" });
    this.hidden = h("p", { class: "hidden-results" });
    this.mean = null;
    if (results.hidden) {
      body.append(this.hidden);
    } else if (results.kind === "text") {
      this.cloud = h("p", { class: "word-cloud" });
      body.append(this.cloud);
    } else {
      if (results.kind === "rating") {
        this.mean = h("strong", { class: "rating-mean" });
        body.append(h("p", { class: "rating" }, this.mean, ` / ${view.spec?.scale ?? ""}`));
      }
      const list = h("ol", { class: `bars bars-${results.kind}` });
      for (const row of rows) {
        const count = h("span", { class: "count" });
        const share = h("span", { class: "share" });
        const bar = h("span", { class: "bar", aria: { hidden: "true" } });
        const li = h(
          "li",
          { class: "bar-row", data: { option: row.id } },
          h("span", { class: "label", text: row.label }),
          h("span", { class: "figures" }, count, share),
          h("span", { class: "track", aria: { hidden: "true" } }, bar),
        );
        this.rows.set(row.id, { row: li, count, share, bar });
        list.append(li);
      }
      body.append(list);
    }
    replace(this.el, head, body);
  }

  /** @param {{term: string, count: number}[]} terms */
  _cloud(terms) {
    const most = Math.max(1, ...terms.map((x) => x.count));
    replace(
      this.cloud,
      ...terms.map((x) => {
        const word = h("span", { class: "term", text: x.term, data: { count: x.count } });
        word.style.setProperty("--weight", String(x.count / most));
        return word;
      }),
    );
  }
}

/** A co-design session's slots and their leading options; the final design once revealed. */
export class DesignBoard {
  constructor() {
    this.el = h("section", { class: "design-board", aria: { live: "polite" } });
  }

  /** @param {any} view */
  update(view) {
    this.el.dataset.design = view.id;
    this.el.dataset.phase = view.state?.phase ?? "";
    const final = view.final ?? null;
    const title = h("h2", { class: "board-title", text: view.spec?.title ?? view.id });
    if (final) {
      replace(this.el, title, finalDesign(final));
      return;
    }
    const slots = h("ol", { class: "slots" });
    for (const slot of view.results?.slots ?? []) {
      const options = h("ol", { class: "bars" });
      for (const option of slot.options) {
        const bar = h("span", { class: "bar", aria: { hidden: "true" } });
        bar.style.setProperty("--share", String(option.share));
        options.append(
          h(
            "li",
            {
              class: `bar-row${slot.picks > 0 && option.id === slot.leader ? " leading" : ""}`,
              data: { option: option.id },
            },
            h("span", { class: "label", text: option.label }),
            h(
              "span",
              { class: "figures" },
              h("span", { class: "count", text: formatNumber(option.count), data: { count: option.count } }),
              h("span", { class: "share", text: formatShare(option.share) }),
            ),
            h("span", { class: "track", aria: { hidden: "true" } }, bar),
          ),
        );
      }
      slots.append(
        h(
          "li",
          { class: `slot${slot.locked ? " locked" : ""}`, data: { slot: slot.id } },
          h("h3", { class: "slot-label" }, slot.label, slot.locked ? h("span", { class: "tag", text: t("live.locked") }) : null),
          options,
        ),
      );
    }
    replace(this.el, title, slots);
  }
}

/**
 * The final design of a co-design session: one chosen option per slot.
 * @param {{design: string, title?: string, slots: Array<{slot: string, label: string, option: string, option_label: string, image_url?: string|null, count: number, share: number}>}} final
 */
export function finalDesign(final) {
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

/**
 * A draw's winners by name (ids where no name was recorded).
 * @param {string[]} winners  user ids, first prize first
 * @param {Record<string, string|null>} [names]
 */
export function winnerList(winners, names = {}) {
  return h(
    "ol",
    { class: "winners" },
    ...winners.map((id) => h("li", { class: "winner", data: { winner: id }, text: names[id] ?? id })),
  );
}

/** A short fingerprint of a hex digest for display. @param {string|null|undefined} hex */
export function shortHash(hex) {
  return hex ? `${hex.slice(0, 8)}…${hex.slice(-8)}` : "–";
}
