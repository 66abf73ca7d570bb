/*
 * quorumd text marking: shows names and values taken from the cluster (KV keys, lock
 * names and holders) so that what a person reads is what is stored.
 *
 * The dashboard puts every such string into the page as text (textContent), never as
 * HTML, so no key can add markup or script. Text alone can still mislead: a key may
 * hold characters that draw nothing or reorder what follows them, and whoever holds a
 * write token chooses the keys and lock names an operator reads. "backup" followed by
 * a zero-width space is a different lock from "backup" but looks the same; in
 * "report\u202Etxt.exe" the right-to-left override makes the end read "exe.txt" (the
 * "Trojan Source" trick, Boucher and Anderson, 2021, CVE-2021-42574). So these
 * characters are cut out of the text and shown as a marked code instead ("U+202E" in a
 * box, its name in the tooltip):
 *   - C0 and C1 control characters and DEL (a value may keep tab, line feed and
 *     carriage return: `keepLayout`);
 *   - bidirectional formatting characters: ALM, LRM, RLM, the embeddings, overrides
 *     and isolates (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069);
 *   - characters that draw nothing or look like a plain space: zero-width space and
 *     joiners, word joiner and the invisible operators, soft hyphen, combining
 *     grapheme joiner, Hangul fillers, Mongolian vowel separator, byte order mark,
 *     the tag characters (U+E0000–U+E007F), line and paragraph separators, and every
 *     space but U+0020 (no-break, en, em, thin, ideographic spaces...);
 *   - U+0020 itself at the start or the end of a name, where it cannot be seen.
 * Letters that merely look alike (Latin "a" and Cyrillic "а") are not marked: they
 * are ordinary text in many languages.
 *
 * Works in the browser (global `QuorumdText`) and in Node through `vm` (the unit test:
 * test/daemon/ui/text.test.ts). Plain ES2019, no build step.
 */
(function (global) {
  'use strict';

  var NAMES = {
    0x00ad: 'SOFT HYPHEN',
    0x034f: 'COMBINING GRAPHEME JOINER',
    0x061c: 'ARABIC LETTER MARK',
    0x115f: 'HANGUL CHOSEONG FILLER',
    0x1160: 'HANGUL JUNGSEONG FILLER',
    0x180e: 'MONGOLIAN VOWEL SEPARATOR',
    0x200b: 'ZERO WIDTH SPACE',
    0x200c: 'ZERO WIDTH NON-JOINER',
    0x200d: 'ZERO WIDTH JOINER',
    0x200e: 'LEFT-TO-RIGHT MARK',
    0x200f: 'RIGHT-TO-LEFT MARK',
    0x2028: 'LINE SEPARATOR',
    0x2029: 'PARAGRAPH SEPARATOR',
    0x202a: 'LEFT-TO-RIGHT EMBEDDING',
    0x202b: 'RIGHT-TO-LEFT EMBEDDING',
    0x202c: 'POP DIRECTIONAL FORMATTING',
    0x202d: 'LEFT-TO-RIGHT OVERRIDE',
    0x202e: 'RIGHT-TO-LEFT OVERRIDE',
    0x2060: 'WORD JOINER',
    0x2061: 'FUNCTION APPLICATION',
    0x2062: 'INVISIBLE TIMES',
    0x2063: 'INVISIBLE SEPARATOR',
    0x2064: 'INVISIBLE PLUS',
    0x2066: 'LEFT-TO-RIGHT ISOLATE',
    0x2067: 'RIGHT-TO-LEFT ISOLATE',
    0x2068: 'FIRST STRONG ISOLATE',
    0x2069: 'POP DIRECTIONAL ISOLATE',
    0x3164: 'HANGUL FILLER',
    0xfeff: 'ZERO WIDTH NO-BREAK SPACE (byte order mark)',
    0xffa0: 'HALFWIDTH HANGUL FILLER',
    0x0020: 'SPACE (at the start or the end)',
    0x0009: 'CHARACTER TABULATION',
    0x000a: 'LINE FEED',
    0x000d: 'CARRIAGE RETURN',
    0x0000: 'NULL',
    0x007f: 'DELETE',
  };

  /** Whether code point `c` is marked (U+0020 is handled by the caller: only at the ends). */
  function hidden(c) {
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
    if (NAMES[c] !== undefined && c !== 0x20) return true;
    if (c >= 0xe0000 && c <= 0xe007f) return true; // tags
    // Spaces other than U+0020 (Unicode Zs): look like a space, are not one.
    if (c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x202f || c === 0x205f || c === 0x3000) return true;
    return false;
  }

  function code(c) {
    var h = c.toString(16).toUpperCase();
    while (h.length < 4) h = '0' + h;
    return 'U+' + h;
  }

  function nameOf(c) {
    if (NAMES[c] !== undefined) return NAMES[c];
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return 'control character';
    if (c >= 0xe0000 && c <= 0xe007f) return 'tag character (invisible)';
    return 'a space other than U+0020';
  }

  /**
   * The pieces of `s` in order: { text } for what is shown as it is, { code, name,
   * cp } for a marked character. `opts.keepLayout`: tab, line feed and carriage
   * return stay text (for values, which may be several lines).
   */
  function segments(s, opts) {
    var keep = !!(opts && opts.keepLayout);
    var out = [];
    var buf = '';
    var chars = Array.from(String(s));
    var first = 0;
    var last = chars.length - 1;
    for (var i = 0; i < chars.length; i++) {
      var c = chars[i].codePointAt(0);
      var mark = c === 0x20 ? !keep && (i === first || i === last) : hidden(c) && !(keep && (c === 0x09 || c === 0x0a || c === 0x0d));
      if (!mark) {
        buf += chars[i];
        continue;
      }
      if (buf) out.push({ text: buf });
      buf = '';
      out.push({ code: code(c), name: nameOf(c), cp: c });
    }
    if (buf) out.push({ text: buf });
    return out;
  }

  /** Whether `s` holds anything `segments` marks. */
  function hasHidden(s, opts) {
    return segments(s, opts).some(function (p) { return p.code !== undefined; });
  }

  /** `s` as plain text with each marked character written ⟦U+XXXX⟧ (tooltips, logs, tests). */
  function plain(s, opts) {
    return segments(s, opts).map(function (p) { return p.code === undefined ? p.text : '\u27e6' + p.code + '\u27e7'; }).join('');
  }

  /**
   * A DOM fragment of `s` for `doc`: the text as text nodes, each marked character a
   * <span class="qt-mark"> with its code (and its name as the title). Never HTML.
   */
  function fragment(doc, s, opts) {
    var f = doc.createDocumentFragment();
    segments(s, opts).forEach(function (p) {
      if (p.code === undefined) {
        f.appendChild(doc.createTextNode(p.text));
        return;
      }
      var m = doc.createElement('span');
      m.className = 'qt-mark';
      m.title = p.name + ' (' + p.code + '): shown as its code, it would not be visible or would change the order of the text';
      m.textContent = p.code;
      f.appendChild(m);
    });
    return f;
  }

  var api = { segments: segments, hasHidden: hasHidden, plain: plain, fragment: fragment, version: 1 };
  global.QuorumdText = api;
})(typeof window !== 'undefined' ? window : this);
