// Reconnect and retry delays: exponential backoff with full jitter.
//
// PROTOCOL.md ("Close codes") asks clients to reconnect "with jittered exponential
// backoff". Full jitter draws the whole delay at random below an exponentially
// growing cap, so that the viewers a node restart disconnected at one instant come
// back spread over the window instead of in waves (the "Full Jitter" variant in
// "Exponential Backoff And Jitter", AWS Architecture Blog, 2015).

/**
 * @typedef {object} Backoff
 * @property {number} initialMs  the cap of the first delay
 * @property {number} maxMs      the cap never grows past this
 */

/** @type {Readonly<Backoff>} */
export const DEFAULT_BACKOFF = Object.freeze({ initialMs: 500, maxMs: 15_000 });

/**
 * The delay before retry number `attempt` (0 for the first):
 * `random() * min(maxMs, initialMs * 2 ** attempt)`.
 *
 * @param {number} attempt          0, 1, 2, …
 * @param {Backoff} [backoff]
 * @param {() => number} [random]   uniform in [0, 1); Math.random by default
 * @returns {number} milliseconds, in [0, maxMs)
 */
export function backoffDelay(attempt, backoff = DEFAULT_BACKOFF, random = Math.random) {
  // 2 ** attempt is Infinity for large attempts; min() bounds it.
  const cap = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.max(0, attempt));
  return random() * cap;
}

/**
 * Check and complete a backoff option.
 *
 * @param {Partial<Backoff> | undefined} backoff
 * @returns {Readonly<Backoff>}
 */
export function backoffFrom(backoff) {
  const out = { ...DEFAULT_BACKOFF, ...backoff };
  for (const name of /** @type {const} */ (["initialMs", "maxMs"])) {
    if (typeof out[name] !== "number" || !(out[name] >= 0) || !Number.isFinite(out[name])) {
      throw new RangeError(`backoff.${name} must be a finite number >= 0, got ${out[name]}`);
    }
  }
  return Object.freeze(out);
}
