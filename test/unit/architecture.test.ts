/**
 * The layering ARCHITECTURE.md describes, checked from the imports as written:
 * no import circle between files or between folders of src/, and an engine
 * (src/cedar, src/cache) that knows only Cedar. Type-only imports count: they
 * are what a reader follows.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '../../src');
const IMPORT =
  /(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...sourceFiles(full));
    else if (name.endsWith('.ts')) out.push(full);
  }
  return out;
}

/** file (relative to src/) → the src/ files it imports. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const targets: string[] = [];
    for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const spec = m[1] ?? m[2];
      const target = path.resolve(path.dirname(file), spec).replace(/\.js$/, '.ts');
      if (target.startsWith(SRC)) targets.push(path.relative(SRC, target));
    }
    graph.set(path.relative(SRC, file), targets);
  }
  return graph;
}

/** Strongly connected components with more than one member (Tarjan). */
function circles(graph: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** The folder a file belongs to: its first path segment (top-level files are their own room). */
const folderOf = (file: string): string => (file.includes('/') ? file.slice(0, file.indexOf('/')) : file);

describe('architecture', () => {
  const graph = importGraph();

  it('reads the imports of every source file (the check would pass vacuously otherwise)', () => {
    expect(graph.size).toBeGreaterThan(100);
    expect(graph.get('pipeline/decide-check.ts')).toContain('cedar/evaluate.ts');
  });

  it('has no import circle between files', () => {
    const files = new Map([...graph].map(([f, ts]) => [f, new Set(ts)]));
    expect(circles(files)).toEqual([]);
  });

  it('has no import circle between folders', () => {
    const folders = new Map<string, Set<string>>();
    for (const [file, targets] of graph) {
      const from = folderOf(file);
      const set = folders.get(from) ?? new Set<string>();
      for (const t of targets) if (folderOf(t) !== from) set.add(folderOf(t));
      folders.set(from, set);
    }
    expect(circles(folders)).toEqual([]);
  });

  it('keeps the engine to Cedar: src/cedar and src/cache import nothing from the server side', () => {
    const forbidden = ['bundle', 'context', 'envoy', 'server', 'pipeline', 'config', 'observability', 'wiring'];
    const leaks: string[] = [];
    for (const [file, targets] of graph) {
      if (!['cedar', 'cache'].includes(folderOf(file))) continue;
      for (const t of targets) if (forbidden.includes(folderOf(t))) leaks.push(`${file} → ${t}`);
    }
    expect(leaks).toEqual([]);
  });
});
