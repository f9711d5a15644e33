// The README's benchmark section and charts are rendered from bench/results/*.json (npm run
// bench:render): what is committed must be what the committed reports render to, and every chart
// must be well-formed XML (a timed-out run's label "< 1.4" once broke the CPU chart).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { render } from '../../bench/render';

const root = join(__dirname, '..', '..');

/** Tags nest and close, '<' only opens a tag, '&' only opens an entity. */
function wellFormed(svg: string): string | undefined {
  const open: string[] = [];
  for (const m of svg.matchAll(/<[^>]*>|&[^;\s]*;?|[<&]/g)) {
    const t = m[0];
    if (t.startsWith('&')) {
      if (!/^&(amp|lt|gt|quot|apos|#\d+);$/.test(t)) return `stray '&' at ${m.index}`;
    } else if (!/^<\/?[A-Za-z][\w:-]*(\s[^<>]*)?\/?>$/.test(t)) {
      return `stray '<' at ${m.index}: ${svg.slice(m.index, m.index + 20)}`;
    } else if (t.startsWith('</')) {
      if (open.pop() !== t.slice(2, -1).trim()) return `unbalanced ${t} at ${m.index}`;
    } else if (!t.endsWith('/>')) {
      open.push(/^<([\w:-]+)/.exec(t)![1]);
    }
  }
  return open.length ? `unclosed <${open.join('>, <')}>` : undefined;
}

test('the well-formedness check finds what a browser would reject', () => {
  expect(wellFormed('<svg><text>4,919</text></svg>')).toBeUndefined();
  expect(wellFormed('<svg><text>&lt; 1.4</text><rect x="1"/></svg>')).toBeUndefined();
  expect(wellFormed('<svg><text>< 1.4</text></svg>')).toMatch(/stray '<'/);
  expect(wellFormed('<svg><text>a & b</text></svg>')).toMatch(/stray '&'/);
  expect(wellFormed('<svg><text>x</svg>')).toMatch(/unbalanced/);
});

test('README benchmark section and charts are what the committed reports render to', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const out = render(readme);
  expect(out.readme).toBe(readme);
  expect(Object.keys(out.charts).length).toBeGreaterThan(0);
  for (const [name, body] of Object.entries(out.charts)) {
    expect(wellFormed(body), name).toBeUndefined();
    expect(readFileSync(join(root, 'bench', 'results', name), 'utf8'), name).toBe(body);
  }
});
