// A typed use of the client that touches every event and every kind's view; `tsc -p .`
// (tests/test_js_types.py) must accept it. wrong.ts is its counterpart that must fail.
import {
  ConnectionState,
  HudongClient,
  HudongError,
  PROTOCOL_VERSION,
  type AckMessage,
  type CloseInfo,
  type ConnectionStateValue,
  type InteractionView,
} from "../hudong.js";
import type { Command, KindName, ServerMessage, ViewsByKind } from "../protocol.js";

const client = new HudongClient("ws://127.0.0.1:8000/ws", { protocol: "msgpack", timeoutMs: 5000 });
const version: "hudong.v1" = PROTOCOL_VERSION;
const state: ConnectionStateValue = client.state;
if (state === ConnectionState.RECONNECTING) console.log("reconnecting");

client.on("state", (now, previous) => console.log(now.toUpperCase(), previous));
client.on("hello", (hello) => console.log(hello.protocol, hello.heartbeat_ms, hello.limits.max_text_chars));
client.on("joined", (joined) => console.log(joined.you.role, joined.snapshot.online, joined.token ?? ""));
client.on("snapshot", (snapshot, message) => console.log(snapshot.room.title, snapshot.recent.length, message.type));
client.on("resync", (snapshot) => console.log(snapshot.version, snapshot.degrade ?? 0));
client.on("reconnecting", ({ attempt, delayMs, close, error }) =>
  console.log(attempt, delayMs.toFixed(0), close?.name, error?.code),
);
client.on("batch", (batch) => console.log(batch.room, batch.seq, batch.events.length));
client.on("event", (event, batch) => console.log(event.type, batch.seq));
client.on("danmaku", (event) => console.log(event.user.name, event.text, event.color, event.mode, event.count ?? 1));
client.on("retract", (event) => console.log(event.id, event.ts));
client.on("drawResult", (event) => console.log(event.title, event.winners.join(",")));
client.on("designRevealed", (event) => console.log(event.interaction, event.final));
client.on("quizRevealed", (event) => console.log(event.question, event.final));
client.on("views", (message) => console.log(message.version, Object.keys(message.interactions)));
client.on("interaction", (view, previous) => console.log(view.id, view.kind, view.created_at, previous?.kind));
client.on("notice", (notice) => console.log(notice.kind));
client.on("drawWon", (notice) => console.log(notice.kind));
client.on("quizStanding", (notice) => console.log(notice.kind));
client.on("degrade", ({ level, name }) => console.log(level + 1, name));
client.on("online", (online, message) => console.log(online + 1, message.room));
client.on("message", (message: ServerMessage) => console.log(message.type));
client.on("error", (error: HudongError) => console.log(error.code, error.retry, error.retryAfterMs, error.serverProtocol));
client.on("close", (info: CloseInfo) => console.log(info.code, info.name, info.reconnect, info.byClient, info.wasClean));

// Every kind's view, as the server sends it.
client.on("poll", (view) => {
  const results = view.results;
  if (results.hidden) console.log(results.voters);
  else if (results.kind === "single" || results.kind === "multiple")
    console.log(view.spec.question, results.options.map((o) => `${o.label} ${o.count} ${o.share}`));
  else if (results.kind === "ranked") console.log(results.order, results.irv?.winner);
  else if (results.kind === "rating") console.log(results.mean ?? "-", results.histogram[0]?.count);
  else console.log(results.terms.map((t) => t.term));
  console.log(view.status.phase, view.status.closes_at);
});
client.on("quiz", (view) => {
  console.log(view.spec.title, view.spec.questions.map((q) => q.correct ?? q.text), view.accepting);
  console.log(view.results[0]?.options[0]?.share, view.leaderboard[0]?.rank, view.players, view.state.current);
});
client.on("codesign", (view) => {
  console.log(view.spec.slots[0]?.options[0]?.image_url, view.state.phase, view.results.slots[0]?.leader);
  console.log(view.final?.slots[0]?.option_label);
});
client.on("draw", (view) => {
  console.log(view.spec.winners, view.state.commitment, view.state.seed, view.entrants);
  console.log(view.names?.["v-1"], view.claims?.[0]?.code);
});
client.on("qa", (view) => console.log(view.spec.max_chars, view.questions[0]?.votes, view.questions[0]?.answer, view.more));
client.on("checkin", (view) => console.log(view.spec.title, view.status.phase, view.count + 1));
client.on("wall", (view) => console.log(view.posts[0]?.text, view.count, view.queue?.length, view.pending));
client.on("reactions", (view) => console.log(view.spec.emoji, view.counts["🔥"], view.total));

function describe(view: InteractionView): string {
  switch (view.kind) {
    case "poll":
      return view.spec.question;
    case "quiz":
      return view.spec.title;
    default:
      return view.kind;
  }
}
const byKind: { [K in KindName]: (view: ViewsByKind[K]) => string } = {
  poll: describe,
  quiz: describe,
  codesign: (view) => view.spec.title,
  draw: (view) => view.spec.title,
  qa: (view) => view.spec.title,
  checkin: (view) => view.spec.title,
  wall: (view) => view.spec.title,
  reactions: (view) => view.spec.title,
};
console.log(byKind, version);

const join: Command = { op: "join", room: "demo", name: "guest", lang: "zh-CN" };
const vote: Command = { op: "vote", id: 3, interaction: "p", key: "k-1", option: "a" };
console.log(join, vote);

async function main(): Promise<void> {
  const { you, snapshot } = await client.open("demo", { name: "guest" });
  console.log(you.id, snapshot.interactions?.["p"]?.kind);
  const ack: AckMessage = await client.vote("p", { option: "a" });
  console.log(ack.version, ack.duplicate);
  await client.answer("q", "q1", "a");
  await client.pick("d", "bun", "sesame");
  await client.unpick("d", "bun");
  await client.enter("prize");
  await client.ask("ask", "why?");
  await client.upvote("ask", "q1");
  await client.unvote("ask", "q1");
  await client.checkin();
  await client.post("hello");
  await client.participate("react", { glyph: "🔥" });
  await client.sendDanmaku("666", { color: "#ffcc00", mode: "top" });
  await client.ping();
  await client.createInteraction("poll", { id: "p2", question: "?", kind: "single" });
  await client.act("p2", "open");
  await client.host("create", { kind: "poll" });
  await client.retract("node1.1");
  await client.mute("v-1", 60);
  await client.unmute("v-1");
  await client.ban("v-1");
  await client.unban("v-1");
  console.log(client.interaction("p")?.kind, client.degrade, client.online, client.recent.length);
  await client.close();
}
void main;
