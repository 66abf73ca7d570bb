/**
 * A stand-in for a benchmark (test/helpers/exit-cleanup.test.ts runs it outside vitest):
 * makes the tests' API token file, prints its path, then ends as argv[2] says — `end`
 * (normally), `throw` (an uncaught error), `wait` (until a signal; at most 30 s),
 * `own-handler` (its own SIGINT listener, which checks that the file is still there and
 * exits 130).
 */
import { existsSync } from 'node:fs';
import { testTokenFile } from './auth.ts';

const file = testTokenFile();
const mode = process.argv[2];
console.log(`token ${file}`);
if (mode === 'throw') throw new Error('the bench failed');
if (mode === 'wait' || mode === 'own-handler') {
  if (mode === 'own-handler') {
    process.on('SIGINT', () => {
      console.log(`still there in the handler: ${existsSync(file)}`);
      setTimeout(() => process.exit(130), 50);
    });
  }
  const t = setTimeout(() => process.exit(3), 30_000);
  console.log('ready');
  void t;
}
