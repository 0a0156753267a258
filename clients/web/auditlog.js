// The console's "Audit log" tab: who did what in the room (PROTOCOL.md, "Audit log").
//
// The newest entries first (actor, action, target, result, node, time), a filter by
// actor, action or target, "Older" for the next page (the log's cursor), and exports of
// every matching entry as CSV or JSON. Read over REST with the console's token; hosts,
// moderators and the admin may read it.

import { api, errorText, formatClock, h, replace, t } from "/static/common.js";

const PAGE = 50;

export const AUDIT_WORDS = {
  en: {
    "audit.tab": "Audit log",
    "audit.filter": "Filter",
    "audit.actor": "Who (user id or role)",
    "audit.action": "Action",
    "audit.target": "Target (interaction, user, post …)",
    "audit.apply": "Show",
    "audit.older": "Older",
    "audit.csv": "Export CSV",
    "audit.json": "Export JSON",
    "audit.empty": "No entries yet.",
    "audit.refused": "refused: {code}",
  },
  zh: {
    "audit.tab": "操作日志",
    "audit.filter": "筛选",
    "audit.actor": "操作人（用户 ID 或角色）",
    "audit.action": "操作",
    "audit.target": "对象（互动、用户、帖子 …）",
    "audit.apply": "查看",
    "audit.older": "更早",
    "audit.csv": "导出 CSV",
    "audit.json": "导出 JSON",
    "audit.empty": "暂无记录。",
    "audit.refused": "被拒绝：{code}",
  },
};

/**
 * @typedef {object} AuditHow
 * @property {(rest: string) => string} path  the room's REST path
 * @property {() => string} token  the console's REST token
 * @property {(path: string, filename: string) => Promise<void>} download
 */

/** A target as short text: `interaction=p1 user=fan-2`. @param {Record<string, unknown>} target */
const targetText = (target) =>
  Object.entries(target ?? {})
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(",") : v}`)
    .join(" ");

export class AuditPanel {
  /** @param {AuditHow} how */
  constructor(how) {
    this.how = how;
    /** @type {Record<string, string>} */
    this.filters = {};
    /** @type {string | null} */
    this.next = null;
    const input = (/** @type {string} */ name) => h("input", { attrs: { id: `audit-${name}`, name, maxlength: 200 } });
    const word = (/** @type {string} */ key) => ({ data: { i18n: key }, text: t(key) });
    const labelled = (/** @type {string} */ name) => h("div", { class: "grow" }, h("label", { attrs: { for: `audit-${name}` }, ...word(`audit.${name}`) }), input(name));
    this.form = h(
      "form",
      { class: "row", attrs: { id: "audit-filter" }, on: { submit: (/** @type {Event} */ e) => (e.preventDefault(), this.refresh()) } },
      labelled("actor"),
      labelled("action"),
      labelled("target"),
      h("button", { attrs: { type: "submit" }, ...word("audit.apply") }),
    );
    this.rows = h("ol", { class: "items audit-log", attrs: { id: "audit-rows" } });
    this.more = h("button", { class: "secondary", attrs: { id: "audit-older", type: "button" }, ...word("audit.older"), hidden: true, on: { click: () => this.load(true) } });
    const exporter = (/** @type {string} */ format) =>
      h("button", { class: "secondary small", attrs: { id: `audit-${format}`, type: "button" }, ...word(`audit.${format}`), on: { click: () => this.export(format) } });
    this.el = h("div", { class: "card" }, this.form, h("div", { class: "row" }, exporter("csv"), exporter("json")), this.rows, this.more);
  }

  /** The query string of the filters (and a page's cursor and size). @param {Record<string, string>} extra */
  query(extra = {}) {
    const params = new URLSearchParams({ ...this.filters, ...extra });
    const text = params.toString();
    return text ? `?${text}` : "";
  }

  /** Read the filters and show the newest page. */
  async refresh() {
    const data = new FormData(/** @type {HTMLFormElement} */ (this.form));
    this.filters = {};
    for (const name of ["actor", "action", "target"]) {
      const value = String(data.get(name) ?? "").trim();
      if (value) this.filters[name] = value;
    }
    await this.load(false);
  }

  /** @param {boolean} older  the page after the one shown (else the newest) */
  async load(older) {
    const extra = { limit: String(PAGE), ...(older && this.next ? { before: this.next } : {}) };
    try {
      const page = await api(this.how.path(`/audit-log${this.query(extra)}`), { token: this.how.token() });
      const rows = page.entries.map((/** @type {any} */ e) =>
        h(
          "li",
          { class: "item audit-entry", data: { id: e.id, action: e.action, actor: e.actor.id } },
          h("strong", { text: `${e.actor.name} (${e.actor.role})` }),
          ` ${e.action} `,
          h("code", { text: targetText(e.target) }),
          ` · ${e.result === "ok" ? "✓" : t("audit.refused", { code: e.result })} · ${formatClock(e.at)} · ${e.node}`,
        ),
      );
      if (older) this.rows.append(...rows);
      else replace(this.rows, ...(rows.length ? rows : [h("li", { class: "muted-text", text: t("audit.empty") })]));
      this.next = page.next;
      this.more.hidden = !page.next;
    } catch (err) {
      replace(this.rows, h("li", { class: "muted-text", text: errorText(err) }));
    }
  }

  /** Download every matching entry. @param {string} format  csv or json */
  async export(format) {
    await this.how.download(`/audit-log${this.query({ format })}`, `audit-log.${format}`);
  }
}
