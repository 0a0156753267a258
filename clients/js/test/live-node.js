// What the live tests share: a hudong node started from the tests (`python -m server
// serve` on a free port, with its own admin token and secret), its REST API, a TCP
// proxy that can cut connections, and bounded waits.
//
// The Python interpreter is $HUDONG_PYTHON, else python3; it must have the hudong
// package installed (e.g. HUDONG_PYTHON=/path/to/.venv/bin/python npm test).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { connect, createServer } from "node:net";
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

import { HudongError } from "../hudong.js";

const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
// A relative path is taken from where the tests run, not from the server's cwd.
const PYTHON = resolvePython(process.env.HUDONG_PYTHON || "python3");
/** Bound on any single wait for the server (an answer, an event, a close). */
export const WAIT_MS = 5_000;
export const STARTUP_MS = 15_000;
export const TEST_TIMEOUT_MS = 30_000;

/** @param {string} command a name looked up in PATH, or a path */
function resolvePython(command) {
  return command.includes("/") || command.includes("\\") ? resolve(command) : command;
}

// --- the server --------------------------------------------------------------------------

/** A port that was free a moment ago (the server binds it right after). */
async function freePort() {
  const probe = createServer();
  await new Promise((resolve, reject) => {
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => resolve(undefined));
  });
  const address = probe.address();
  assert.ok(address && typeof address === "object");
  await new Promise((resolve) => probe.close(() => resolve(undefined)));
  return address.port;
}

/**
 * A running node.
 * @typedef {object} LiveNode
 * @property {import("node:child_process").ChildProcess} proc
 * @property {number} port
 * @property {string} base     http://127.0.0.1:port
 * @property {string} wsUrl    ws://127.0.0.1:port/ws
 * @property {string} admin    the admin token
 * @property {() => string} output  the tail of the server's output
 */

/** @returns {Promise<LiveNode>} */
export async function startServer() {
  const port = await freePort();
  const admin = randomBytes(24).toString("hex");
  const proc = spawn(PYTHON, ["-m", "server", "serve", "--host", "127.0.0.1", "--port", String(port)], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      HUDONG_ADMIN_TOKEN: admin,
      HUDONG_SECRET: randomBytes(32).toString("hex"),
      HUDONG_LOG_LEVEL: "warning",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  // Keep the tail of the server's output for failure messages (and drain the pipes).
  let output = "";
  const keep = (/** @type {Buffer} */ chunk) => {
    output = (output + chunk.toString("utf-8")).slice(-8_000);
  };
  proc.stdout?.on("data", keep);
  proc.stderr?.on("data", keep);
  /** @type {Error | null} */
  let spawnError = null;
  proc.once("error", (err) => {
    spawnError = err;
  });
  // If this process dies without running after(), do not leave the server behind.
  const reap = () => proc.kill("SIGKILL");
  process.once("exit", reap);
  proc.once("exit", () => process.off("exit", reap));

  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + STARTUP_MS;
  for (;;) {
    if (spawnError) throw new Error(`cannot run ${PYTHON} (set HUDONG_PYTHON): ${spawnError}`);
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(
        `the server exited (${proc.exitCode ?? proc.signalCode}) before answering /healthz; ` +
          `is hudong installed for ${PYTHON}? (set HUDONG_PYTHON)\n${output}`,
      );
    }
    try {
      const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`the server did not answer /healthz within ${STARTUP_MS} ms\n${output}`);
    }
    await sleep(100);
  }
  return { proc, port, base, wsUrl: `ws://127.0.0.1:${port}/ws`, admin, output: () => output };
}

/** @param {import("node:child_process").ChildProcess} proc */
export async function stopServer(proc) {
  const exited = () => proc.exitCode !== null || proc.signalCode !== null;
  if (exited()) return;
  /** @param {number} ms */
  const waitExit = (ms) =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      proc.once("exit", () => {
        clearTimeout(timer);
        resolve(true);
      });
      if (exited()) {
        clearTimeout(timer);
        resolve(true);
      }
    });
  proc.kill("SIGTERM");
  if (await waitExit(5_000)) return;
  proc.kill("SIGKILL");
  await waitExit(5_000);
}

// --- the REST API ---------------------------------------------------------------------------

/**
 * Call the REST API as admin.
 * @param {LiveNode} node
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
export async function api(node, method, path, body) {
  const res = await fetch(`${node.base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${node.admin}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/**
 * A fresh room; returns its id.
 * @param {LiveNode} node
 */
export async function createRoom(node) {
  const id = `js-${randomBytes(6).toString("hex")}`;
  const res = await api(node, "POST", "/api/v1/rooms", { id });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return id;
}

/**
 * A room token; `userId` makes the identity stable across tokens and connections.
 * @param {LiveNode} node
 * @param {string} room
 * @param {"viewer"|"host"|"moderator"|"screen"} role
 * @param {string} [userId]
 * @returns {Promise<string>}
 */
export async function mintToken(node, room, role, userId) {
  return (await mintIdentity(node, room, role, userId)).token;
}

/**
 * A token and the id its holder has in the room: for a viewer, the pseudonym of
 * `userId` (PROTOCOL.md, "Privacy").
 * @param {LiveNode} node
 * @param {string} room
 * @param {"viewer"|"host"|"moderator"|"screen"} role
 * @param {string} [userId]
 * @returns {Promise<{token: string, id: string}>}
 */
export async function mintIdentity(node, room, role, userId) {
  const res = await api(node, "POST", `/api/v1/rooms/${room}/tokens`, userId === undefined ? { role } : { role, user_id: userId });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return { token: res.body.token, id: res.body.user_id };
}

/**
 * Create the single-choice poll `p` (options a, b) in `room` and open it.
 * @param {LiveNode} node
 * @param {string} room
 */
export async function openPoll(node, room) {
  const spec = { id: "p", question: "Q?", kind: "single", options: [{ id: "a", label: "A" }, { id: "b", label: "B" }] };
  const created = await api(node, "POST", `/api/v1/rooms/${room}/interactions`, { kind: "poll", spec });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const opened = await api(node, "POST", `/api/v1/rooms/${room}/interactions/p/actions`, { action: "open" });
  assert.equal(opened.status, 200, JSON.stringify(opened.body));
}

/**
 * The counts of poll `p` as the host sees them over REST: {voters, a, b}.
 * @param {LiveNode} node
 * @param {string} room
 */
export async function pollCounts(node, room) {
  const res = await api(node, "GET", `/api/v1/rooms/${room}/interactions/p`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return countsOf(res.body);
}

/**
 * {voters, a, b} of a poll view.
 * @param {any} view
 */
export function countsOf(view) {
  /** @type {Record<string, number>} */
  const counts = { voters: view.results.voters };
  for (const option of view.results.options ?? []) counts[option.id] = option.count;
  return counts;
}

// --- waits ------------------------------------------------------------------------------------

/**
 * The first `type` event of `client` for which `accept` holds, within WAIT_MS; resolves
 * with the listener's first argument. Subscribes at once: call it before the action that
 * causes the event.
 * @param {import("../hudong.js").HudongClient} client
 * @param {any} type
 * @param {(value: any) => boolean} [accept]
 * @returns {Promise<any>}
 */
export function nextEvent(client, type, accept = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${type} event within ${WAIT_MS} ms`));
    }, WAIT_MS);
    const off = client.on(type, (/** @type {any} */ value) => {
      if (!accept(value)) return;
      clearTimeout(timer);
      off();
      resolve(value);
    });
  });
}

/**
 * Poll `check` until it returns true, within WAIT_MS.
 * @param {() => Promise<boolean> | boolean} check
 * @param {string} what
 */
export async function eventually(check, what) {
  const deadline = Date.now() + WAIT_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${WAIT_MS} ms: ${what}`);
    await sleep(25);
  }
}

/**
 * @param {Promise<unknown>} promise
 * @param {string} code
 */
export async function rejectsWith(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof HudongError, String(err));
    assert.equal(err.code, code, err.message);
    return true;
  });
}

// --- a TCP proxy that cuts connections -----------------------------------------------------------

/**
 * Forwards 127.0.0.1:`port` to the node, chunk by chunk, and can cut every connection
 * (both sockets destroyed: the client sees the TCP connection end without a close
 * frame, 1006), refuse new ones, or swallow what the server sends after the client's
 * next chunk (an answer lost on the way).
 */
export class TcpProxy {
  /** @param {number} targetPort */
  constructor(targetPort) {
    this.targetPort = targetPort;
    /** New connections are closed at once. */
    this.refusing = false;
    /** Connections accepted (and forwarded). */
    this.accepted = 0;
    /** @type {Set<{client: import("node:net").Socket, upstream: import("node:net").Socket, swallow: boolean}>} */
    this._pairs = new Set();
    this._swallowArmed = false;
    this._server = createServer((client) => this._accept(client));
    this.port = 0;
  }

  async start() {
    await new Promise((resolve, reject) => {
      this._server.once("error", reject);
      this._server.listen(0, "127.0.0.1", () => resolve(undefined));
    });
    const address = this._server.address();
    assert.ok(address && typeof address === "object");
    this.port = address.port;
    return this;
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  /** @param {import("node:net").Socket} client */
  _accept(client) {
    if (this.refusing) {
      client.destroy();
      return;
    }
    this.accepted += 1;
    const upstream = connect(this.targetPort, "127.0.0.1");
    const pair = { client, upstream, swallow: false };
    this._pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this._pairs.delete(pair);
    };
    client.on("data", (chunk) => {
      upstream.write(chunk);
      if (this._swallowArmed) {
        this._swallowArmed = false;
        pair.swallow = true;
      }
    });
    upstream.on("data", (chunk) => {
      if (!pair.swallow) client.write(chunk);
    });
    for (const socket of [client, upstream]) {
      socket.on("error", drop);
      socket.on("close", drop);
    }
  }

  /** After the client's next chunk reaches the server, nothing the server sends gets through. */
  swallowAfterNextClientChunk() {
    this._swallowArmed = true;
  }

  /** Destroy every connection (both sides). */
  cut() {
    for (const pair of [...this._pairs]) {
      pair.client.destroy();
      pair.upstream.destroy();
      this._pairs.delete(pair);
    }
  }

  async close() {
    this.cut();
    await new Promise((resolve) => this._server.close(() => resolve(undefined)));
  }
}
