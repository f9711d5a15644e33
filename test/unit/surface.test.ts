// The library's shape: no import cycle among lib/'s modules (type-only imports count: they tie
// the modules' types together just the same); LanguageModel's run-time surface is its documented
// API; and the flat parameter buffer holds exactly the state_dict's tensors of nn/layout.ts, in
// their order, on the CPU backend — so summary's count is the model's without a cross-check.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { networkOf } from '../../lib/advanced';
import type { Cell } from '../../lib/backend/types';
import { summaryTable } from '../../lib/checkpoint';
import { LanguageModel } from '../../lib/model';
import { countParameters, parameterSpecs } from '../../lib/nn/layout';
import { numel } from '../../lib/backend/types';

const lib = join(__dirname, '..', '..', 'lib');

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? tsFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** The lib/ modules a module imports: every relative `from '…'`, `import '…'`, `import('…')`, `require('…')`. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:\bfrom|\bimport|\brequire)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => {
    const base = resolve(dirname(file), m[1]).replace(/\.js$/, '');
    const found = [`${base}.ts`, join(base, 'index.ts')].find((p) => statSync(p, { throwIfNoEntry: false })?.isFile());
    expect(found, `${relative(lib, file)} imports ${m[1]}, which is no module of lib/`).toBeDefined();
    return found!;
  });
}

/** Every cycle of the import graph (each found once, from the module where the search met it). */
function cycles(graph: Map<string, string[]>): string[][] {
  const out: string[][] = [];
  const done = new Set<string>(), path: string[] = [];
  const visit = (m: string) => {
    const at = path.indexOf(m);
    if (at >= 0) return void out.push([...path.slice(at), m]);
    if (done.has(m)) return;
    path.push(m);
    for (const next of graph.get(m) ?? []) visit(next);
    path.pop();
    done.add(m);
  };
  for (const m of graph.keys()) visit(m);
  return out;
}

test('no import cycle in lib/', () => {
  const graph = new Map(tsFiles(lib).map((f) => [f, importsOf(f)]));
  expect(graph.size).toBeGreaterThan(10);
  expect([...graph.values()].flat().length).toBeGreaterThan(graph.size); // the imports were read
  expect(cycles(graph).map((c) => c.map((f) => relative(lib, f)).join(' -> '))).toEqual([]);
});

test('LanguageModel shows its documented API only, and mode is read-only', async () => {
  const m = await LanguageModel.create({ vocabSize: 10, embeddingSize: 4, hiddenSize: 4, layers: 1, device: 'cpu' });
  try {
    expect(Object.getOwnPropertyNames(m).sort()).toEqual(['deviceReason', 'tokenizer']);
    const methods = Object.getOwnPropertyNames(LanguageModel.prototype).filter((n) => n !== 'constructor');
    expect(methods.sort()).toEqual(['beamSearch', 'config', 'device', 'dispose', 'evaluate', 'fit', 'generate', 'generateStream', 'mode', 'parameterCount', 'precision', 'predictNext', 'quantization', 'quantize', 'runtimeStats', 'save', 'score', 'session', 'summary', 'tuneCache']);
    const statics = Object.getOwnPropertyNames(LanguageModel).filter((n) => !['length', 'name', 'prototype'].includes(n));
    expect(statics.sort()).toEqual(['create', 'load']);
    expect(() => ((m as { mode: unknown }).mode = 'stream')).toThrow(TypeError);
    expect(() => networkOf({} as LanguageModel)).toThrow(/networkOf: expected a LanguageModel/);
  } finally {
    m.dispose();
  }
});

describe('the parameter buffer is the state_dict of nn/layout.ts', () => {
  const configs: { cell: Cell; layers: number; tieWeights: boolean; embeddingSize: number }[] = [
    { cell: 'lstm', layers: 2, tieWeights: false, embeddingSize: 5 },
    { cell: 'gru', layers: 1, tieWeights: false, embeddingSize: 3 },
    { cell: 'rnn_tanh', layers: 3, tieWeights: true, embeddingSize: 6 },
    { cell: 'rnn_relu', layers: 2, tieWeights: true, embeddingSize: 6 },
  ];
  test.each(configs)('$cell, $layers layers, tied $tieWeights', async (c) => {
    const m = await LanguageModel.create({ vocabSize: 11, hiddenSize: 6, device: 'cpu', ...c });
    try {
      const net = networkOf(m);
      const specs = parameterSpecs(m.config);
      expect(net.layout.map((e) => [e.name, e.shape])).toEqual(specs.map((p) => [p.name, p.shape]));
      // The tensors of their own tile the buffer: no gap, no overlap, nothing after them.
      const own = net.layout.filter((e) => !specs.find((p) => p.name === e.name)!.alias).sort((a, b) => a.offset - b.offset);
      let end = 0;
      for (const e of own) {
        expect(e.offset, e.name).toBe(end);
        end += numel(e.shape);
      }
      expect(end).toBe(net.parameterCount);
      // An alias (the tied decoder.weight) is its tensor.
      for (const p of specs.filter((s) => s.alias)) expect(net.entry(p.name).offset).toBe(net.entry(p.alias!).offset);
      expect(m.parameterCount).toBe(net.parameterCount);
      expect(summaryTable(m.config).total).toBe(countParameters(specs));
      expect(m.summary({ print: false })).toContain(`Total params: ${net.parameterCount.toLocaleString('en-US')}`);
    } finally {
      m.dispose();
    }
  });
});
