// Generated from backoff.js's JSDoc by `npm run types` (scripts/emit-types.mjs); do not edit.
/**
 * The delay before retry number `attempt` (0 for the first):
 * `random() * min(maxMs, initialMs * 2 ** attempt)`.
 *
 * @param {number} attempt          0, 1, 2, …
 * @param {Backoff} [backoff]
 * @param {() => number} [random]   uniform in [0, 1); Math.random by default
 * @returns {number} milliseconds, in [0, maxMs)
 */
export function backoffDelay(attempt: number, backoff?: Backoff, random?: () => number): number;
/**
 * Check and complete a backoff option.
 *
 * @param {Partial<Backoff> | undefined} backoff
 * @returns {Readonly<Backoff>}
 */
export function backoffFrom(backoff: Partial<Backoff> | undefined): Readonly<Backoff>;
/**
 * @typedef {object} Backoff
 * @property {number} initialMs  the cap of the first delay
 * @property {number} maxMs      the cap never grows past this
 */
/** @type {Readonly<Backoff>} */
export const DEFAULT_BACKOFF: Readonly<Backoff>;
export type Backoff = {
    /**
     * the cap of the first delay
     */
    initialMs: number;
    /**
     * the cap never grows past this
     */
    maxMs: number;
};
