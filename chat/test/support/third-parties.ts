import nock from 'nock';

/**
 * nock for the third parties of one test file. `nock.restore()` in one file deactivates interception for every
 * file that runs after it in the same process, so each file re-activates it before its own tests.
 */
export function interceptThirdParties(): void {
  before(() => {
    if (!nock.isActive()) nock.activate();
  });
  afterEach(() => {
    nock.cleanAll();
  });
  after(() => {
    nock.restore();
  });
}
