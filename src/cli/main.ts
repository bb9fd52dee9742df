#!/usr/bin/env node
/**
 * `nucleus-ingest` — run ingestion pipelines from a terminal or a job runner.
 * See docs/cli.md.
 */
import { runCli } from './cli.js';

let interrupts = 0;
const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  onInterrupt(handler) {
    const onSignal = () => {
      interrupts++;
      if (interrupts > 1) {
        process.stderr.write('\nInterrupted twice: exiting now\n');
        process.exit(130);
      }
      handler();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    return () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
  },
});
process.exitCode = code;
