import type { Reporter, SerializedError, TestModule, TestRunEndReason } from 'vitest/node';

/**
 * Prints one plain closing line, "Tests: N passed, N failed, N skipped", which CI reads
 * whatever the runner's own summary looks like.
 *
 * A failure outside any test counts as one failed test, so a failed run never reads "0 failed":
 * a file that fails without a failing test (import error, failing beforeAll/afterAll, whose
 * tests vitest then reports as skipped), each unhandled error, and a run that failed before any
 * file ran (e.g. the global setup could not start a database server).
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>, reason: TestRunEndReason): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const skippedNames: string[] = [];
    for (const mod of testModules) {
      let failedHere = 0;
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failedHere++;
        else {
          skipped++;
          skippedNames.push(test.fullName);
        }
      }
      failed += failedHere === 0 && mod.state() === 'failed' ? 1 : failedHere;
    }
    failed += unhandledErrors.length;
    if (reason === 'failed' && failed === 0) failed = 1;
    // A skipped test says why in its name (e.g. the live group: which LIVE_* variable is not set).
    for (const name of skippedNames) process.stdout.write(`skipped: ${name}\n`);
    process.stdout.write(`\nTests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
