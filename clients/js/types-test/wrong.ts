// Deliberately wrong uses: tests/test_js_types.py asserts that tsc refuses each of them
// (so the declarations are not `any` in disguise). Not part of `tsc -p .`.
import { HudongClient } from "../hudong.js";

const client = new HudongClient("ws://127.0.0.1:8000/ws", { protocol: "xml" });
client.on("danmaku", (event) => console.log(event.txt));
client.on("poll", (view) => console.log(view.results.winner));
client.on("danmkau", () => {});
void client.vote("p", { option: 1 });
void client.createInteraction("poll", { id: "p", question: "?", kind: "pie" });
