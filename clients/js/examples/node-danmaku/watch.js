#!/usr/bin/env node
// Watches a hudong room and prints its danmaku, one line each, as they arrive:
//
//   node watch.js ws://127.0.0.1:8000/ws demo [--token VIEWER_OR_SCREEN_TOKEN] [--json]
//
// stdout gets the danmaku ("name: text", or one JSON object a line with --json), so it
// can be piped into another program; stderr gets what happens to the connection.
// Without a token it joins as an anonymous viewer (if the room allows it). The token
// may also come from $HUDONG_TOKEN, which keeps it out of `ps`.
// It keeps watching through lost connections (reconnects and joins again by itself)
// until Ctrl-C.
import { parseArgs } from "node:util";
import WebSocket from "ws"; // Node 20 has no global WebSocket
import { HudongClient } from "@hudong/client";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { token: { type: "string" }, name: { type: "string" }, json: { type: "boolean" } },
});
const [url, room] = positionals;
if (!url || !room) {
  console.error("usage: node watch.js WS_URL ROOM [--token TOKEN] [--name NAME] [--json]");
  process.exit(2);
}
const token = values.token ?? process.env.HUDONG_TOKEN;

const client = new HudongClient(url, { WebSocket, protocol: "msgpack" });

const print = (event) =>
  console.log(values.json ? JSON.stringify(event) : `${event.user.name}: ${event.text}${event.count > 1 ? ` ×${event.count}` : ""}`);

client.on("danmaku", print);
client.on("retract", (event) => console.error(`(retracted ${event.id})`));
client.on("reconnecting", ({ attempt, delayMs, close }) =>
  console.error(`connection lost (${close?.name ?? "no answer"}); attempt ${attempt + 1} in ${Math.round(delayMs)} ms`),
);
client.on("resync", () => console.error("back in the room"));
client.on("error", (err) => console.error(`error: ${err.code}: ${err.message}`));

process.once("SIGINT", () => client.close().then(() => process.exit(0)));
process.once("SIGTERM", () => client.close().then(() => process.exit(0)));

try {
  const { you, snapshot } = await client.open(room, token ? { token } : { name: values.name ?? "watcher" });
  console.error(`joined ${room} as ${you.name}; ${snapshot.online} online`);
} catch (err) {
  console.error(`cannot join ${room}: ${err.code}: ${err.message}`); // room_not_found, unauthorized, …
  process.exit(1);
}
