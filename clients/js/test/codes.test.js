// codes.js is generated from protocol/codes.py (`python -m protocol.codes`); the
// Python suite checks that it is up to date, this one that it is well-formed.

import assert from "node:assert/strict";
import { test } from "node:test";

import { CLOSE_BY_CODE, CLOSES, ERRORS } from "../codes.js";
import * as hudong from "../hudong.js";

test("every error code has a boolean retry and a description", () => {
  const names = Object.keys(ERRORS);
  assert.ok(names.length > 0);
  for (const [name, entry] of Object.entries(ERRORS)) {
    assert.match(name, /^[a-z][a-z_]*$/, name);
    assert.equal(typeof entry.retry, "boolean", name);
    assert.equal(typeof entry.description, "string", name);
    assert.ok(entry.description.length > 0, name);
  }
  // the codes the client and PROTOCOL.md rely on
  for (const name of ["text_too_long", "forbidden", "rate_limited", "room_rate_limited"]) {
    assert.ok(Object.hasOwn(ERRORS, name), name);
  }
  assert.equal(ERRORS.rate_limited.retry, true);
});

test("every close entry has an integer code, a boolean reconnect and a description", () => {
  for (const [name, entry] of Object.entries(CLOSES)) {
    assert.match(name, /^[a-z][a-z_]*$/, name);
    assert.ok(Number.isInteger(entry.code), name);
    // RFC 6455 section 7.4: 1000-2999 for the protocol, 4000-4999 private use
    assert.ok((entry.code >= 1000 && entry.code <= 2999) || (entry.code >= 4000 && entry.code <= 4999), name);
    assert.equal(typeof entry.reconnect, "boolean", name);
    assert.equal(typeof entry.description, "string", name);
  }
});

test("close codes are unique and CLOSE_BY_CODE maps them back to their names", () => {
  const codes = Object.values(CLOSES).map((c) => c.code);
  assert.equal(new Set(codes).size, codes.length);
  assert.equal(Object.keys(CLOSE_BY_CODE).length, codes.length);
  for (const [name, entry] of Object.entries(CLOSES)) {
    const back = CLOSE_BY_CODE[entry.code];
    assert.ok(back, `${name} (${entry.code})`);
    assert.equal(back.name, name);
    assert.equal(back.code, entry.code);
    assert.equal(back.reconnect, entry.reconnect);
  }
  assert.equal(CLOSE_BY_CODE[4004].name, "room_deleted");
  assert.equal(CLOSE_BY_CODE[4004].reconnect, false);
  assert.equal(CLOSE_BY_CODE[1012].reconnect, true);
  // a token's end: join again with a new token, not with the same one
  assert.equal(CLOSE_BY_CODE[4005].name, "token_expired");
  assert.equal(CLOSE_BY_CODE[4005].reconnect, false);
  assert.equal(CLOSE_BY_CODE[4006].name, "token_revoked");
  assert.equal(CLOSE_BY_CODE[4006].reconnect, false);
});

test("the tables are frozen", () => {
  assert.ok(Object.isFrozen(ERRORS));
  assert.ok(Object.isFrozen(CLOSES));
  assert.ok(Object.isFrozen(CLOSE_BY_CODE));
});

test("hudong.js re-exports the tables and its client codes do not shadow the server's", () => {
  assert.equal(hudong.ERRORS, ERRORS);
  assert.equal(hudong.CLOSE_BY_CODE, CLOSE_BY_CODE);
  for (const name of Object.keys(hudong.CLIENT_ERRORS)) {
    assert.ok(!Object.hasOwn(ERRORS, name), name);
  }
});
