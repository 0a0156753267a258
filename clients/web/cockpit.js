// The event team's cockpit (/cockpit#room=…&token=…): the room's figures now and over the
// event, charted as inline SVG from GET …/timeline (a per-minute history every node
// writes into the store), the interactions running now with their live results (each
// kind's wall widget, through registry.js), top words of the danmaku, the degrade level
// and keyword alerts. The token: a host or moderator token of the room, or the admin
// token (the page then mints itself a screen token of the room to follow it live).
// Top words are the node's (GET …/top-words, every 5 s): the words of every danmaku of
// the event over every node, cut by jieba as the word cloud cuts them (Chinese words,
// not characters).
import { addWords, applyI18n } from "/static/i18n.js";
import {
  api,
  connectClient,
  errorText,
  formatNumber,
  h,
  hideTokenFromAddressBar,
  linkParams,
  replace,
  setupLanguage,
  stayInRoom,
  t,
  tokenClaims,
} from "/static/common.js";
import { ALERT_WORDS } from "/static/alerts.js";
import { screenWidgets } from "/static/registry.js";

const WORDS = {
  en: {
    "cockpit.title": "Cockpit",
    "cockpit.online": "Viewers now",
    "cockpit.peak": "Peak viewers",
    "cockpit.participants": "Participants",
    "cockpit.unique": "Unique viewers",
    "cockpit.rate": "Participation rate",
    "cockpit.danmaku": "Danmaku / min",
    "cockpit.votes": "Votes / min",
    "cockpit.posts": "Posts / min",
    "cockpit.chart.viewers": "Viewers and participants, per minute",
    "cockpit.chart.activity": "Danmaku, votes and posts, per minute",
    "cockpit.chart.degrade": "Load level, per minute, and nodes",
    "cockpit.series.degrade": "Load level",
    "cockpit.node": "{node}: {n} viewers, load {level}, at {time}",
    "cockpit.running": "Running now",
    "cockpit.none": "No alert",
    "cockpit.words": "Top words",
    "cockpit.nowords": "No danmaku yet",
    "cockpit.signin": "Open the cockpit with #room=…&token=… (a host or moderator token, or the admin token).",
    "cockpit.series.online": "Viewers",
    "cockpit.series.participants": "Participants",
    "cockpit.series.unique_viewers": "Unique viewers",
    "cockpit.series.danmaku": "Danmaku",
    "cockpit.series.votes": "Votes",
    "cockpit.series.posts": "Posts",
  },
  zh: {
    "cockpit.title": "驾驶舱",
    "cockpit.online": "当前观众",
    "cockpit.peak": "观众峰值",
    "cockpit.participants": "参与人数",
    "cockpit.unique": "独立观众",
    "cockpit.rate": "参与率",
    "cockpit.danmaku": "弹幕/分钟",
    "cockpit.votes": "投票/分钟",
    "cockpit.posts": "上墙/分钟",
    "cockpit.chart.viewers": "每分钟观众与参与人数",
    "cockpit.chart.activity": "每分钟弹幕、投票与上墙",
    "cockpit.chart.degrade": "每分钟负载等级与节点",
    "cockpit.series.degrade": "负载等级",
    "cockpit.node": "{node}：{n} 位观众，负载 {level}，{time}",
    "cockpit.running": "正在进行",
    "cockpit.none": "暂无告警",
    "cockpit.words": "热词",
    "cockpit.nowords": "还没有弹幕",
    "cockpit.signin": "请用 #room=…&token=… 打开驾驶舱（主持人或审核员令牌，或管理员令牌）。",
    "cockpit.series.online": "观众",
    "cockpit.series.participants": "参与",
    "cockpit.series.unique_viewers": "独立观众",
    "cockpit.series.danmaku": "弹幕",
    "cockpit.series.votes": "投票",
    "cockpit.series.posts": "上墙",
  },
};
addWords(WORDS);
addWords(ALERT_WORDS);

const STATS_MS = 2000;
const TIMELINE_MS = 5000;
const COLORS = { degrade: "#ff7043", online: "#4fc3f7", participants: "#ffc400", unique_viewers: "#2b7de9", danmaku: "#e4007f", votes: "#7ee787", posts: "#b39ddb" };
const SVG = "http://www.w3.org/2000/svg";
const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

setupLanguage();
const params = linkParams();
const room = params.get("room") ?? "";
const token = params.get("token") ?? "";
hideTokenFromAddressBar();
$("room-name").textContent = room;

/** @type {any} */ let stats = null;
/** @type {any} */ let timeline = null;
/** @type {any[]} */ let alerts = [];
/** @type {{word: string, count: number}[]} the room's top words, most first */
let words = [];
const TOP_WORDS = 20;
const WORDS_MS = 5000;

/** @param {string} name @param {string} text */
function figure(name, text) {
  const el = document.querySelector(`[data-figure="${name}"]`);
  if (el) el.textContent = text;
}

/** @param {string} path @param {string} [method] @param {any} [body] */
const call = (path, method = "GET", body = undefined) => api(`/rooms/${encodeURIComponent(room)}${path}`, { token, method, body });

function problem(/** @type {string | null} */ text) {
  $("problem").hidden = !text;
  $("problem").textContent = text ?? "";
}

function drawFigures() {
  if (stats) {
    figure("online", formatNumber(stats.online));
    figure("participants", formatNumber(stats.participants));
    figure("unique", formatNumber(stats.unique_viewers));
    figure("danmaku", formatNumber(stats.danmaku_per_min));
    figure("votes", formatNumber(stats.votes_per_min));
    figure("posts", formatNumber(stats.posts_per_min ?? 0));
    $("level").textContent = `${t("degrade.label")}: ${t(`degrade.${stats.degrade}`)}`;
    $("level").dataset.level = String(stats.degrade);
  }
  const peak = Math.max(timeline?.peak_online ?? 0, stats?.online ?? 0);
  figure("peak", formatNumber(peak));
  // Participants of the viewers the room reached (each counted once, over every node).
  if (stats) figure("rate", stats.unique_viewers ? `${Math.round((100 * stats.participants) / Math.max(stats.unique_viewers, stats.participants))} %` : "–");
}

/**
 * A line chart of per-minute series as inline SVG.
 * @param {HTMLElement} box @param {any[]} rows @param {string[]} names
 * @param {{W?: number, H?: number}} [size] the SVG's units: its box's width and height in px
 */
function chart(box, rows, names, { W = 800, H = 260 } = {}) {
  const pad = { l: 44, r: 10, t: 10, b: 24 };
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  const most = Math.max(1, ...rows.flatMap((row) => names.map((n) => row[n] ?? 0)));
  const top = most + (most % 2); // even: whole numbers on the middle line
  const x = (/** @type {number} */ i) => pad.l + (rows.length < 2 ? (W - pad.l - pad.r) / 2 : (i * (W - pad.l - pad.r)) / (rows.length - 1));
  const y = (/** @type {number} */ v) => H - pad.b - (v * (H - pad.t - pad.b)) / top;
  const add = (/** @type {string} */ tag, /** @type {Record<string, any>} */ attrs, text = "") => {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (text) el.textContent = text;
    svg.append(el);
    return el;
  };
  for (const v of [0, top / 2, top]) {
    add("line", { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), stroke: "#333b4f" });
    add("text", { x: pad.l - 6, y: y(v) + 4, "text-anchor": "end" }, formatNumber(Math.round(v)));
  }
  rows.forEach((row, i) => {
    if (i === 0 || i === rows.length - 1) {
      const at = new Date(row.minute).toTimeString().slice(0, 5);
      add("text", { x: x(i), y: H - 6, "text-anchor": i ? "end" : "start" }, at);
    }
  });
  for (const name of names) {
    const points = rows.map((row, i) => `${x(i)},${y(row[name] ?? 0)}`).join(" ");
    add("polyline", { points, fill: "none", stroke: COLORS[/** @type {keyof COLORS} */ (name)], "stroke-width": 2.5, "data-series": name });
    rows.forEach((row, i) =>
      add("circle", { cx: x(i), cy: y(row[name] ?? 0), r: 3, fill: COLORS[/** @type {keyof COLORS} */ (name)], "data-series": name, "data-value": row[name] ?? 0 }),
    );
  }
  const legend = h("div", { class: "legend" });
  for (const name of names) {
    const key = h("span", { text: t(`cockpit.series.${name}`) });
    key.style.setProperty("--swatch", COLORS[/** @type {keyof COLORS} */ (name)]);
    legend.append(key);
  }
  replace(box, legend, /** @type {any} */ (svg));
}

function drawCharts() {
  const rows = timeline?.minutes ?? [];
  chart($("chart-viewers"), rows, ["online", "unique_viewers", "participants"]);
  const activities = ["danmaku", "votes", "posts"].filter((a) => (timeline?.activities ?? []).includes(a));
  chart($("chart-activity"), rows, activities);
  chart($("chart-degrade"), rows, ["degrade"], { W: 440, H: 170 });
  // Node health: a node whose latest minute is over two minutes old stopped reporting.
  const now = Date.now();
  replace(
    $("nodes"),
    ...(timeline?.nodes ?? []).map((/** @type {any} */ node) =>
      h("li", {
        data: { node: node.node, stale: now - node.minute > 3 * 60_000 },
        text: t("cockpit.node", { node: node.node, n: formatNumber(node.online), level: node.degrade, time: new Date(node.minute).toTimeString().slice(0, 5) }),
      }),
    ),
  );
}

function drawAlerts() {
  const list = $("alerts");
  if (!alerts.length) return replace(list, h("li", { text: t("cockpit.none") }));
  replace(
    list,
    ...alerts.slice(0, 8).map((alert) =>
      h("li", { data: { acked: Boolean(alert.acked) }, text: t("alerts.banner", { name: alert.name ?? alert.watchlist ?? "" }) }),
    ),
  );
}

function drawWords() {
  if (!words.length) return replace($("words"), h("li", { text: t("cockpit.nowords") }));
  replace(
    $("words"),
    ...words.map(({ word, count }) => h("li", { data: { word, count } }, word, h("span", { class: "n", text: `×${formatNumber(count)}` }))),
  );
}

async function poll(/** @type {() => Promise<void>} */ step, /** @type {number} */ ms) {
  for (;;) {
    try {
      await step();
      problem(null);
    } catch (err) {
      problem(errorText(err));
    }
    await new Promise((resolve) => setTimeout(resolve, ms));
  }
}

if (!room || !token) {
  problem(t("cockpit.signin"));
} else {
  poll(async () => {
    stats = await call("/stats");
    drawFigures();
  }, STATS_MS);
  poll(async () => {
    timeline = await call("/timeline");
    drawFigures();
    drawCharts();
    const answer = await call("/alerts");
    alerts = [...(answer.alerts ?? [])].reverse();
    drawAlerts();
  }, TIMELINE_MS);
  poll(async () => {
    words = (await call(`/top-words?n=${TOP_WORDS}`)).words ?? [];
    drawWords();
  }, WORDS_MS);

  // The interactions running now with their live results: what each kind shows on the wall.
  const client = connectClient();
  const screen = screenWidgets(
    client,
    (kind) => kind.wall,
    () => ({
      params,
      showEndedS: 0,
      frame: (/** @type {any[]} */ ...children) => h("section", { class: "panel", hidden: true }, ...children),
      reveal: () => {},
    }),
    (kind) => !kind.standing, // interactions, not the room's standing posts and counters
  );
  for (const { part } of screen.widgets.values()) if (part.region !== "counter") $("results").append(part.el);
  const redraw = () => screen.update();
  for (const event of ["snapshot", "interaction", "results", "state"]) client.on(/** @type {any} */ (event), redraw);
  window.addEventListener("langchange", () => {
    applyI18n();
    drawFigures();
    drawCharts();
    drawAlerts();
    drawWords();
    redraw();
  });
  // Keyword alerts as they fire (staff connections get them; the REST list every 5 s).
  client.on("keywordAlert", (/** @type {any} */ notice) => {
    if (!notice?.alert?.id) return;
    alerts = [notice.alert, ...alerts.filter((alert) => alert.id !== notice.alert.id)];
    drawAlerts();
  });
  drawWords();
  // The admin token is no room token: follow the room with a screen token of its own.
  const follow = tokenClaims(token)
    ? Promise.resolve(token)
    : call("/tokens", "POST", { role: "screen", user_id: "cockpit-admin", name: "Cockpit", ttl_s: 12 * 3600 }).then((minted) => minted.token);
  follow.then(
    (wsToken) => stayInRoom(client, room, { token: wsToken }, { refused: (err) => problem(errorText(err)) }),
    (err) => problem(errorText(err)),
  );
}
