// Runs bcrypt off the main thread: bcryptjs' async API works in slices of up to 100 ms between yields,
// which would stall every other request on the event loop for that long.
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import bcrypt from 'bcryptjs';

// On Linux a thread's nice value is its own: hashing threads yield the CPU to the main (request) thread
// when cores are scarce, so a burst of logins cannot starve /health and every other request.
try {
  setPriority(0, 10);
} catch {
  // not permitted or not supported: run at normal priority
}

export interface BcryptJob {
  id: number;
  op: 'hash' | 'compare';
  input: string;
  /** cost for hash, stored hash for compare */
  arg: number | string;
}

parentPort?.on('message', (job: BcryptJob) => {
  try {
    const result = job.op === 'hash' ? bcrypt.hashSync(job.input, job.arg as number) : bcrypt.compareSync(job.input, job.arg as string);
    parentPort?.postMessage({ id: job.id, result });
  } catch (error) {
    parentPort?.postMessage({ id: job.id, error: error instanceof Error ? error.message : String(error) });
  }
});
