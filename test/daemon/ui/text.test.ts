/**
 * daemon/ui/text.js, the dashboard's text marking, in Node (loaded with vm as the
 * browser loads it: a plain script that defines `QuorumdText`): the characters that
 * would be invisible or reorder a key or lock name are cut out and shown as marked
 * codes, ordinary text (also right-to-left scripts and emoji) stays as it is, and the
 * DOM it builds is text nodes and spans, never HTML. The page in a browser with such
 * keys: test/browser/dashboard-hostile.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';

interface Segment { text?: string; code?: string; name?: string; cp?: number }
interface QuorumdText {
  segments(s: string, o?: { keepLayout?: boolean }): Segment[];
  plain(s: string, o?: { keepLayout?: boolean }): string;
  hasHidden(s: string, o?: { keepLayout?: boolean }): boolean;
  fragment(doc: unknown, s: string, o?: { keepLayout?: boolean }): FakeNode;
}

const source = readFileSync(join(import.meta.dirname, '..', '..', '..', 'daemon', 'ui', 'text.js'), 'utf8');
function load(): QuorumdText {
  const sandbox: { window: Record<string, unknown> } = { window: {} };
  runInNewContext(source, sandbox);
  return sandbox.window.QuorumdText as QuorumdText;
}
const T = load();

/** A DOM with text nodes and elements only: no innerHTML, so markup could not get in unseen. */
class FakeNode {
  children: FakeNode[] = [];
  className = '';
  title = '';
  private ownText = '';
  constructor(readonly kind: 'fragment' | 'text' | 'element', readonly tag = '', text = '') {
    this.ownText = text;
  }
  appendChild(n: FakeNode): FakeNode {
    this.children.push(n);
    return n;
  }
  set textContent(s: string) {
    this.children = [];
    this.ownText = s;
  }
  get textContent(): string {
    return this.ownText + this.children.map((c) => c.textContent).join('');
  }
}
const fakeDoc = {
  createDocumentFragment: () => new FakeNode('fragment'),
  createTextNode: (s: string) => new FakeNode('text', '', s),
  createElement: (tag: string) => new FakeNode('element', tag),
};

describe('QuorumdText', () => {
  it('marks a right-to-left override: "admin\\u202Etxt.exe" is not shown as "adminexe.txt"', () => {
    expect(T.plain('admin\u202Etxt.exe')).toBe('admin⟦U+202E⟧txt.exe');
    expect(T.segments('admin\u202Etxt.exe')).toEqual([{ text: 'admin' }, { code: 'U+202E', name: 'RIGHT-TO-LEFT OVERRIDE', cp: 0x202e }, { text: 'txt.exe' }]);
  });

  it('marks every bidirectional formatting character', () => {
    for (const c of [0x061c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069]) {
      const s = `a${String.fromCodePoint(c)}b`;
      expect(T.hasHidden(s), c.toString(16)).toBe(true);
      expect(T.plain(s)).toBe(`a⟦U+${c.toString(16).toUpperCase().padStart(4, '0')}⟧b`);
      // In a value too: direction changes are never layout.
      expect(T.hasHidden(s, { keepLayout: true }), c.toString(16)).toBe(true);
    }
  });

  it('marks what draws nothing or looks like a plain space, so "backup" and "backup\\u200B" differ on screen', () => {
    expect(T.plain('backup\u200B')).toBe('backup⟦U+200B⟧');
    expect(T.plain('backup')).toBe('backup');
    const invisible = [0x00ad, 0x034f, 0x115f, 0x1160, 0x180e, 0x200b, 0x200c, 0x200d, 0x2028, 0x2029, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0x3164, 0xfeff, 0xffa0, 0xe0001, 0xe0041, 0xe007f];
    const spaces = [0x00a0, 0x1680, 0x2000, 0x2005, 0x200a, 0x202f, 0x205f, 0x3000];
    for (const c of [...invisible, ...spaces]) expect(T.hasHidden(`x${String.fromCodePoint(c)}y`), c.toString(16)).toBe(true);
    // A tag character is one code point (a surrogate pair in UTF-16): one mark, not two.
    expect(T.plain('a\u{E0041}b')).toBe('a⟦U+E0041⟧b');
  });

  it('marks control characters in names; a value keeps its tabs and line breaks', () => {
    expect(T.plain('a\nb\tc\rd\u0000e\u007ff\u0085g\u009bh')).toBe('a⟦U+000A⟧b⟦U+0009⟧c⟦U+000D⟧d⟦U+0000⟧e⟦U+007F⟧f⟦U+0085⟧g⟦U+009B⟧h');
    expect(T.plain('line 1\n\tline 2\r\n', { keepLayout: true })).toBe('line 1\n\tline 2\r\n');
    expect(T.plain('a\u0000b\u001bc', { keepLayout: true })).toBe('a⟦U+0000⟧b⟦U+001B⟧c');
  });

  it('marks a space at either end of a name (where it cannot be seen), not one inside it', () => {
    expect(T.plain(' backup ')).toBe('⟦U+0020⟧backup⟦U+0020⟧');
    expect(T.plain('nightly backup')).toBe('nightly backup');
    expect(T.plain(' ')).toBe('⟦U+0020⟧');
    expect(T.plain(' padded value ', { keepLayout: true })).toBe(' padded value ');
  });

  it('leaves ordinary text alone: markup characters, right-to-left scripts, accents, CJK, emoji', () => {
    for (const s of ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', 'javascript:alert(1)', 'مرحبا بالعالم', 'שלום', 'café', 'e\u0301', '日本語のキー', '🔒 backup', '❤️', 'a/b/c', '']) {
      expect(T.hasHidden(s), s).toBe(false);
      expect(T.plain(s)).toBe(s);
    }
    expect(T.segments('')).toEqual([]);
  });

  it('builds text nodes and marked spans, never HTML', () => {
    const f = T.fragment(fakeDoc, '<b>x</b>\u202Eevil');
    expect(f.children.map((c) => [c.kind, c.tag, c.className, c.textContent])).toEqual([
      ['text', '', '', '<b>x</b>'],
      ['element', 'span', 'qt-mark', 'U+202E'],
      ['text', '', '', 'evil'],
    ]);
    expect(f.children[1]!.title).toMatch(/RIGHT-TO-LEFT OVERRIDE \(U\+202E\)/);
    expect(source).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
  });
});
