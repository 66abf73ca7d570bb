/**
 * Text from a node (lock names and owners, service names, tags, addresses, error
 * messages that quote them) as the CLI shows it on a terminal. Whoever holds a write
 * token chooses those strings, and a terminal obeys escape sequences in what it prints:
 * an ESC in a lock owner recoloured `quorumd lock list`, cleared the screen, or forged
 * rows with a newline. Control characters (C0, DEL, C1) and the bidirectional overrides
 * (which reorder what follows: "U+202E") are shown as `\u{…}` escapes; everything else,
 * other scripts and emoji included, as it is. JSON output (--json) is left alone: JSON
 * escapes them itself.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export function shown(s: string): string {
  return s.replace(UNSAFE, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);
}
