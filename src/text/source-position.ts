/**
 * Places in a file a user wrote: `file:line:col: message`, with the line
 * itself and a caret under the spot, the way compilers point at a mistake.
 */
import { createRequire } from 'node:module';

/**
 * The `yaml` package, loaded when a YAML note is first made: Cedar's compile
 * worker, a process started for every compile, needs file-and-line notes but
 * never YAML, and loading the package was up to ~150 ms of its start (measured
 * on this loaded machine).
 */
const require = createRequire(import.meta.url);
let yamlModule: typeof import('yaml') | undefined;
const yaml = (): typeof import('yaml') => (yamlModule ??= require('yaml') as typeof import('yaml'));

export interface SourceNote {
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based, in characters. */
  column: number;
  message: string;
  /** The offending line and a caret line under it ("" when the text is not at hand). */
  excerpt: string;
}

/** 1-based line and column of a character offset. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const at = Math.max(0, Math.min(offset, text.length));
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < at; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: at - lineStart + 1 };
}

/** Longest excerpt line shown; longer lines are cut around the spot. */
const MAX_EXCERPT_CHARS = 120;

/** The line holding `start`, and carets under start..end (at least one, never past the line). */
export function excerpt(text: string, start: number, end = start + 1): string {
  const { line, column } = lineAndColumn(text, start);
  const lineText = (text.split('\n')[line - 1] ?? '').replace(/\r$/, '').replace(/\t/g, ' ');
  const width = Math.max(1, Math.min(end - start, lineText.length - column + 1));
  let shown = lineText;
  let caretAt = column - 1;
  if (shown.length > MAX_EXCERPT_CHARS) {
    const from = Math.max(0, caretAt - MAX_EXCERPT_CHARS / 2);
    shown = shown.slice(from, from + MAX_EXCERPT_CHARS);
    caretAt -= from;
  }
  const gutter = `${line} | `;
  return `${gutter}${shown}\n${' '.repeat(gutter.length - 2)}| ${' '.repeat(caretAt)}${'^'.repeat(Math.min(width, MAX_EXCERPT_CHARS))}`;
}

export function noteAt(
  file: string,
  text: string,
  start: number,
  end: number | undefined,
  message: string,
): SourceNote {
  const { line, column } = lineAndColumn(text, start);
  return { file, line, column, message, excerpt: excerpt(text, start, end) };
}

/** `file:line:col: message`. */
export function formatNoteLine(n: SourceNote): string {
  return `${n.file}:${n.line}:${n.column}: ${n.message}`;
}

/** The note with its excerpt under it, indented. */
export function formatNote(n: SourceNote): string {
  return n.excerpt ? `${formatNoteLine(n)}\n${n.excerpt.replace(/^/gm, '    ')}` : formatNoteLine(n);
}

/** Notes with the same place and message once, in order of place. */
export function distinctNotes(notes: SourceNote[]): SourceNote[] {
  const seen = new Set<string>();
  return notes
    .filter((n) => {
      const key = formatNoteLine(n);
      return seen.has(key) ? false : (seen.add(key), true);
    })
    .sort((a, b) => (a.file === b.file ? a.line - b.line || a.column - b.column : a.file < b.file ? -1 : 1));
}

/** V8 shows this many characters before the offending one in its "Unexpected token" excerpt. */
const V8_JSON_CONTEXT_CHARS = 10;

/**
 * Where JSON.parse stopped: V8 says "at position N" for some mistakes, and for
 * an unexpected token only quotes the text around it (`Unexpected token '/',
 * ..."path": /x}" is not valid JSON`), which is found in the text again.
 */
export function jsonErrorOffset(message: string, text = ''): number | undefined {
  const at = /at position (\d+)/.exec(message);
  if (at) return Number(at[1]);
  const quoted = /Unexpected token '(.+?)', (\.\.\.)?"([\s\S]*?)"(\.\.\.)? is not valid JSON/.exec(message);
  if (quoted) {
    const [, token, cutBefore, snippet] = quoted;
    const start = text.indexOf(snippet);
    if (start !== -1) return start + (cutBefore ? V8_JSON_CONTEXT_CHARS : Math.max(0, snippet.indexOf(token)));
  }
  if (/end of JSON input/.test(message)) return text.length;
  return undefined;
}

/** A JSON syntax error as a note (V8's message without its position or excerpt). */
export function jsonErrorNote(file: string, text: string, err: Error): SourceNote {
  const offset = jsonErrorOffset(err.message, text) ?? text.length;
  const message = err.message
    .replace(/\s*in JSON at position \d+.*$/, '')
    .replace(/\s*\(line \d+ column \d+\)$/, '')
    .replace(/, (\.\.\.)?"[\s\S]*"(\.\.\.)? is not valid JSON$/, '');
  return noteAt(file, text, offset, offset + 1, `not valid JSON: ${message}`);
}

/**
 * Where the value at `path` sits in a YAML text, or its key when `at` is
 * "key" (an unknown setting), so a schema error can point at it; the nearest
 * enclosing node when the path is not all there.
 */
export function yamlPathNote(
  file: string,
  text: string,
  path: ReadonlyArray<PropertyKey>,
  message: string,
  at: 'value' | 'key' = 'value',
): SourceNote {
  const YAML = yaml();
  const lineCounter = new YAML.LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter });
  const keys = path.map((p) => (typeof p === 'symbol' ? String(p) : p));
  let offset = 0;
  const keyNode =
    at === 'key' && keys.length > 0 ? findKey(doc.getIn(keys.slice(0, -1), true), keys[keys.length - 1]) : undefined;
  if (keyNode?.range) offset = keyNode.range[0];
  else {
    for (let depth = keys.length; depth >= 0; depth--) {
      const node = doc.getIn(keys.slice(0, depth), true) as { range?: [number, number, number] } | undefined;
      if (node && typeof node === 'object' && node.range) {
        offset = node.range[0];
        break;
      }
    }
  }
  return noteAt(file, text, offset, undefined, message);
}

type RangedNode = { range?: [number, number, number] };

function findKey(map: unknown, key: string | number): RangedNode | undefined {
  const YAML = yaml();
  if (!YAML.isMap(map) && !(map === undefined)) return undefined;
  const items = (map as { items?: { key: unknown }[] } | undefined)?.items ?? [];
  const pair = items.find((p) => YAML.isScalar(p.key) && String(p.key.value) === String(key));
  return pair?.key as RangedNode | undefined;
}

/** A YAML syntax error (the `yaml` package's YAMLParseError carries its position) as a note. */
export function yamlErrorNote(file: string, text: string, err: Error): SourceNote {
  const pos = (err as { pos?: [number, number] }).pos;
  const message = err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
  return noteAt(file, text, pos?.[0] ?? 0, pos?.[1], `not valid YAML: ${message}`);
}

/** Notes whose files are named relative to `dir`, renamed as paths a terminal can open (dir/file). */
export function notesUnder(dir: string, notes: SourceNote[]): SourceNote[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return notes.map((n) => ({ ...n, file: prefix + n.file }));
}
