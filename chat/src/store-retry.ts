/**
 * Retries a MongoDB write that failed on a transient lock conflict. MongoDB labels those as retryable; FerretDB on its
 * SQLite backend (the local dev store) answers concurrent writers with "database is locked" (SQLITE_BUSY) instead.
 * Only writes that are safe to repeat (inserts with a fixed _id, idempotent updates) go through here.
 */
export async function retryTransient<T>(write: () => Promise<T>, attempts = 6): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      if (attempt >= attempts || !isTransient(error)) throw error;
      const backoff = Math.min(500, 10 * 2 ** attempt) * (0.5 + Math.random());
      await new Promise((resolve) => setTimeout(resolve, backoff));
    }
  }
}

function isTransient(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (/SQLITE_BUSY|database is locked/i.test(error.message)) return true;
  const labels = (error as { errorLabelSet?: Set<string> }).errorLabelSet;
  return labels?.has('RetryableWriteError') === true || labels?.has('TransientTransactionError') === true;
}
