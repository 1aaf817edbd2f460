// Shared with the e2e browser scenario, which must not pull in the fake services (and monitoring's source) with it.

/** Bounded poll for a condition (no sleeps as synchronisation). */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
