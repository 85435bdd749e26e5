// Waiting in tests: for a condition that a probe reports, with a deadline that names what was awaited.

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Thrown by a probe of waitFor to stop waiting at once (other errors count as "not yet"). */
export class GaveUp extends Error {}

/** Polls `probe` until it gives a value (not undefined); throws after timeoutMs. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number): Promise<T> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  for (;;) {
    const value = await Promise.resolve()
      .then(probe)
      .catch((err: unknown) => {
        if (err instanceof GaveUp) throw err;
        return undefined;
      });
    if (value !== undefined) {
      // MESHCC_TEST_WAITS=1: where the suite's time goes while it waits.
      if (process.env.MESHCC_TEST_WAITS && Date.now() - started >= 1000) console.log(`[wait] ${Date.now() - started} ms for ${what}`);
      return value;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}
