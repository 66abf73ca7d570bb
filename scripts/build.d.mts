// Types of scripts/build.mjs for the TypeScript that imports it (test/build-setup.ts).
export const ROOT: string;
export const SOURCE_DIRS: string[];
export const ENTRIES: Record<string, string>;
export const NODE_ENTRY: { name: string; source: string };
/** The CommonJS module wrapper the build puts around dist/node.cjs: [before, after]. */
export const CJS_WRAPPER: readonly [string, string];
export function newestSourceMtime(root?: string): number;
export function isFresh(root?: string): boolean;
export function build(root?: string, log?: (s: string) => void): Promise<string[]>;
export function ensureBuilt(root?: string): Promise<boolean>;
