#!/usr/bin/env node
// Entry point for `quorumd` / `npx quorumd`. The project is TypeScript run through
// the tsx loader, so a fresh clone works after `npm ci` with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../daemon/cli.ts');
await main(process.argv);
