// Keyword alerts on the console (PROTOCOL.md, "Keyword alerts"; 关键词预警).
//
// The host's watch lists (words, or pairs of words in one danmaku, and how many matches
// in how many seconds make a spike) are edited here and kept over the REST API. When a
// list spikes, every host and moderator console gets a `keyword_alert` notice at once:
// the alert shows in a banner above every tab, with the danmaku that set it off, until
// someone acknowledges it; the acknowledgement reaches every console the same way.

import { formatClock, h, replace, t } from "/static/common.js";

export const ALERT_WORDS = {
  en: {
    "alerts.title": "Keyword alerts",
    "alerts.banner": "Keyword alert: {name}",
    "alerts.spike": "{count} matching danmaku in {window} s (normal {normal})",
    "alerts.ack": "Acknowledge",
    "alerts.acked": "Acknowledged by {name} at {time}",
    "alerts.none": "No alerts yet.",
    "alerts.lists": "Watch lists",
    "alerts.nolists": "No watch lists: nothing is watched.",
    "alerts.add": "Add watch list",
    "alerts.name": "Name",
    "alerts.terms": "Words (one per line; any one matches)",
    "alerts.pairs": "Pairs (one per line, “brand + word”: both in one danmaku)",
    "alerts.threshold": "Matches",
    "alerts.window": "within seconds",
    "alerts.baseline": "× the room's normal",
    "alerts.remove": "Remove",
    "alerts.rule": "{threshold} in {window} s, {baseline}× normal",
    "alerts.saved": "Watch lists saved.",
  },
  zh: {
    "alerts.title": "关键词预警",
    "alerts.banner": "关键词预警：{name}",
    "alerts.spike": "{window} 秒内 {count} 条命中弹幕（平常 {normal} 条）",
    "alerts.ack": "确认",
    "alerts.acked": "{name} 已于 {time} 确认",
    "alerts.none": "暂无预警。",
    "alerts.lists": "监控词表",
    "alerts.nolists": "没有监控词表：未监控任何词。",
    "alerts.add": "添加监控词表",
    "alerts.name": "名称",
    "alerts.terms": "关键词（每行一个，命中任意一个即算）",
    "alerts.pairs": "词对（每行一对，“品牌 + 词”：同一条弹幕里同时出现）",
    "alerts.threshold": "命中条数",
    "alerts.window": "秒内",
    "alerts.baseline": "× 房间平常水平",
    "alerts.remove": "删除",
    "alerts.rule": "{window} 秒内 {threshold} 条，平常的 {baseline} 倍",
    "alerts.saved": "监控词表已保存。",
  },
};

const SHOWN = 3; // alerts in the banner at once, newest first

/**
 * @typedef {object} AlertsHow
 * @property {(path: string, method?: string, body?: unknown) => Promise<any>} call  a REST call on the room
 * @property {(text: string, level?: string) => void} notify
 */

/** Lines of a textarea, trimmed, without empty ones. @param {string} text */
const lines = (text) => text.split(/\n/).map((s) => s.trim()).filter(Boolean);

export class KeywordAlerts {
  /** @param {AlertsHow} how */
  constructor(how) {
    this.how = how;
    /** @type {Map<string, any>} alert id -> alert */
    this.alerts = new Map();
    /** @type {any[]} */
    this.watchlists = [];
  }

  /** Follow a room's client: its alerts arrive as `keyword_alert` notices. @param {any} client */
  attach(client) {
    this.alerts.clear();
    this.watchlists = [];
    client.on("keywordAlert", (/** @type {any} */ notice) => this.take(notice.alert));
    this.draw();
  }

  /** Keep an alert (a newer copy wins; an acknowledged one never goes back). @param {any} alert */
  take(alert) {
    if (!alert || typeof alert.id !== "string") return;
    const held = this.alerts.get(alert.id);
    if (!held?.acked || alert.acked) this.alerts.set(alert.id, alert);
    this.draw();
  }

  async refresh() {
    const answer = await this.how.call("/alerts", "GET");
    if (!answer) return;
    this.watchlists = answer.watchlists ?? [];
    for (const alert of answer.alerts ?? []) this.take(alert);
    this.draw();
  }

  /** @param {string} id */
  async acknowledge(id) {
    const answer = await this.how.call(`/alerts/${encodeURIComponent(id)}/ack`, "POST");
    if (answer) this.take(answer);
  }

  /** @param {any[]} lists */
  async save(lists) {
    const answer = await this.how.call("/alerts/watchlists", "PUT", { watchlists: lists });
    if (!answer) return false;
    this.watchlists = answer.watchlists ?? [];
    this.draw();
    this.how.notify(t("alerts.saved"), "ok");
    return true;
  }

  /** The form's new list, added to the lists kept. @param {HTMLFormElement} form */
  async add(form) {
    const data = new FormData(form);
    const text = (/** @type {string} */ name) => String(data.get(name) ?? "").trim();
    const pairs = lines(text("pairs")).map((line) => line.split("+").map((s) => s.trim()));
    const list = {
      id: `w-${Date.now().toString(36)}`,
      name: text("name") || undefined,
      terms: lines(text("terms")),
      pairs,
      threshold: Number(text("threshold") || 10),
      window_s: Number(text("window_s") || 60),
      baseline: Number(text("baseline") || 3),
    };
    if (await this.save([...this.watchlists, list])) form.reset();
  }

  newest() {
    return [...this.alerts.values()].sort((a, b) => (b.at ?? 0) - (a.at ?? 0));
  }

  draw() {
    this.drawBanner();
    this.drawPanel();
  }

  drawBanner() {
    const banner = document.getElementById("alert-banner");
    if (!banner) return;
    const open = this.newest().filter((a) => !a.acked);
    banner.hidden = open.length === 0;
    replace(banner, ...open.slice(0, SHOWN).map((a) => this.alertItem(a, "alert-open")));
  }

  /** @param {any} a @param {string} cls */
  alertItem(a, cls) {
    const spike = t("alerts.spike", { count: a.count, window: a.window_s, normal: a.normal });
    const acked = a.acked
      ? h("p", { class: "muted-text alert-acked", text: t("alerts.acked", { name: a.acked.name, time: formatClock(a.acked.at) }) })
      : h("button", { class: "small", attrs: { type: "button" }, data: { action: "ack-alert" }, text: t("alerts.ack"), on: { click: () => this.acknowledge(a.id) } });
    return h(
      "div",
      { class: `alert-item ${cls}`, data: { alert: a.id, watch: a.watch } },
      h("p", { class: "alert-head" }, h("strong", { text: t("alerts.banner", { name: a.name }) }), ` · ${formatClock(a.at)} · ${spike}`),
      h("ul", { class: "alert-samples" }, ...(a.samples ?? []).map((/** @type {any} */ s) => h("li", {}, h("span", { class: "muted-text", text: `${s.name}: ` }), s.text))),
      acked,
    );
  }

  drawPanel() {
    const lists = document.getElementById("watchlists");
    const history = document.getElementById("alert-list");
    if (!lists || !history) return;
    replace(
      lists,
      ...(this.watchlists.length
        ? this.watchlists.map((w) =>
            h(
              "li",
              { class: "row item", data: { watchlist: w.id } },
              h(
                "span",
                { class: "grow" },
                h("strong", { text: w.name }),
                ` · ${[...w.terms, ...w.pairs.map((/** @type {string[]} */ p) => p.join(" + "))].join(", ")} · `,
                h("span", { class: "muted-text", text: t("alerts.rule", { threshold: w.threshold, window: w.window_s, baseline: w.baseline }) }),
              ),
              h("button", { class: "small secondary", attrs: { type: "button" }, text: t("alerts.remove"), on: { click: () => this.save(this.watchlists.filter((x) => x.id !== w.id)) } }),
            ),
          )
        : [h("li", { class: "muted-text", text: t("alerts.nolists") })]),
    );
    const all = this.newest();
    replace(history, ...(all.length ? all.map((a) => h("li", {}, this.alertItem(a, "alert-past"))) : [h("li", { class: "muted-text", text: t("alerts.none") })]));
  }
}
