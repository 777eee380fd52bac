/** Waiting for asynchronous outcomes (reloads, syncs, pushes) by polling, never by sleeping a fixed time. */

const POLL_EVERY_MS = 25;
const DEFAULT_WAIT_MS = 3000;

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Poll `probe` until `done` holds for its value, or until `withinMs` has
 * passed; returns the last value either way, so the caller's own assertion
 * on it says what was seen. A probe that throws fails the wait.
 */
export async function waitFor<T>(probe: () => Promise<T>, done: (v: T) => boolean, withinMs: number): Promise<T> {
  const deadline = Date.now() + withinMs;
  let last = await probe();
  while (!done(last) && Date.now() < deadline) {
    await pause(POLL_EVERY_MS);
    last = await probe();
  }
  return last;
}

/**
 * Poll until `fn` returns a truthy value and return it; a throw counts as
 * "not yet". Fails naming the last error when `timeoutMs` passes.
 */
export async function eventually<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = DEFAULT_WAIT_MS,
  everyMs = POLL_EVERY_MS,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until)
      throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await pause(everyMs);
  }
}
