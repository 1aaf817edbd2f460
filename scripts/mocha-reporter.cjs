// Mocha's spec output plus one closing line in the plain form CI reads: "N passed, N failed".
const Mocha = require('mocha');
const fs = require('node:fs');
const { EVENT_RUN_END } = Mocha.Runner.constants;

class PlatformReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const { passes, failures, pending } = runner.stats ?? this.stats;
      // test-all.ts sums these files into the closing line for the whole tree
      if (process.env.MOCHA_RESULTS_FILE)
        fs.appendFileSync(process.env.MOCHA_RESULTS_FILE, `${JSON.stringify({ cwd: process.cwd(), passes, failures, pending })}\n`);
    });
  }
}
module.exports = PlatformReporter;
