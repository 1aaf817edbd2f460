// Mocha's spec output; the counts (pending included: a pending test is a failure of the suite, see
// test-all.ts) go to MOCHA_RESULTS_FILE for the closing line "N passed, N failed, N skipped".
const Mocha = require('mocha');
const fs = require('node:fs');
const { EVENT_RUN_END, EVENT_TEST_PENDING } = Mocha.Runner.constants;

class PlatformReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const pendingTitles = [];
    runner.on(EVENT_TEST_PENDING, (test) => pendingTitles.push(test.fullTitle()));
    runner.once(EVENT_RUN_END, () => {
      const { passes, failures, pending } = runner.stats ?? this.stats;
      // test-all.ts sums these files into the closing line for the whole tree
      if (process.env.MOCHA_RESULTS_FILE)
        fs.appendFileSync(process.env.MOCHA_RESULTS_FILE, `${JSON.stringify({ cwd: process.cwd(), passes, failures, pending, pendingTitles })}\n`);
      if (pendingTitles.length > 0)
        process.stdout.write(`\n${pendingTitles.length} pending (not allowed):\n${pendingTitles.map((t) => `  - ${t}`).join('\n')}\n`);
    });
  }
}
module.exports = PlatformReporter;
