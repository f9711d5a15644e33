// The built package's entry points, rnnlm and rnnlm/advanced, each as ESM and as CommonJS: they
// load the same classes, so an RnnlmError thrown by the native backend is `instanceof RnnlmError`
// from either, and a model made through one works with the other. The main entry holds the
// documented API only, the lower layers are in rnnlm/advanced, and the published types say so.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';

const root = join(__dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
/** What leaves the main entry for rnnlm/advanced (the architecture issue's list). */
const ADVANCED = ['Network', 'Optimizer', 'cpuBackend', 'tensor', 'numel', 'Random'];

test('package.json declares ESM and CommonJS entry points with types for rnnlm, rnnlm/advanced and rnnlm/server, and Node >= 20', () => {
  expect(pkg.name).toBe('rnnlm');
  expect(pkg.engines.node).toBe('>=20');
  for (const entry of ['.', './advanced', './server']) {
    const e = pkg.exports[entry];
    for (const file of [e.import.default, e.import.types, e.require.default, e.require.types]) {
      expect(existsSync(join(root, file)), `${file} (run npm run build:ts)`).toBe(true);
    }
  }
});

const script = (mod: 'esm' | 'cjs', other: 'esm' | 'cjs') => `
  ${mod === 'esm' ? "import * as main from 'rnnlm'; import * as advanced from 'rnnlm/advanced';" : "const main = require('rnnlm'); const advanced = require('rnnlm/advanced');"}
  (async () => {
    const { cpuBackend, networkOf } = advanced, { RnnlmError, LanguageModel } = main;
    const s = cpuBackend.createStream();
    let ok = false;
    try { s.alloc('f16', 1); } catch (e) { ok = e instanceof RnnlmError && e.code === 'ERR_INVALID_ARGUMENT'; }
    s.dispose();
    const moved = ${JSON.stringify(ADVANCED)}.filter((n) => n in main || !(n in advanced));
    // A model from the ${other} build of the main entry: the same class, so networkOf knows it.
    const other = ${other === 'esm' ? "await import('rnnlm')" : "(await import('node:module')).createRequire(process.cwd() + '/')('rnnlm')"};
    const m = await other.LanguageModel.create({ vocabSize: 10, embeddingSize: 4, hiddenSize: 4, layers: 1, device: 'cpu' });
    const same = other.LanguageModel === LanguageModel && networkOf(m).parameterCount === m.parameterCount;
    // rnnlm/server takes that model too (one LanguageModel class), and closes.
    const { createServer } = ${mod === 'esm' ? "await import('rnnlm/server')" : "require('rnnlm/server')"};
    await createServer(m).close();
    m.dispose();
    console.log(!ok ? 'wrong error' : moved.length ? 'not moved: ' + moved : !same ? 'two copies' : 'ok');
  })();
`;

test.each([['esm', 'cjs'], ['cjs', 'esm']] as const)('%s entry points load the native backend and share classes with %s', (mod, other) => {
  // Resolve 'rnnlm' as a user would: by package name, through the exports map (self-reference).
  const out = execFileSync(process.execPath, [mod === 'esm' ? '--input-type=module' : '--input-type=commonjs', '-e', script(mod, other)], {
    cwd: root,
    encoding: 'utf8',
  });
  expect(out.trim()).toBe('ok');
});

test("a user's TypeScript (ESM and CommonJS) sees the documented API, and no internals, in the published types", () => {
  const dir = mkdtempSync(join(tmpdir(), 'rnnlm-types-'));
  try {
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(root, join(dir, 'node_modules', 'rnnlm'));
    const use = (main: string, advanced: string) => `
      const model = await ${main}.LanguageModel.create({ vocabSize: 10 });
      const fit: ${main}.FitOptions = { epochs: 2, onEpochEnd: async (log, m) => { await m.generate({ prompt: [1], maxTokens: log.epoch }); } };
      const network: ${advanced}.Network = ${advanced}.networkOf(model);
      const options: ServerOptions = { maxTokens: 8, timeout: 5 };
      const server: RnnlmServer = createServer(model, options);
      export const used = [fit, network.parameterCount, model.mode, new ${advanced}.Random(1).next(), ${advanced}.cpuBackend.device, server.handler];
      // @ts-expect-error an option createServer does not have
      createServer(model, { maxTokenz: 8 });
      // @ts-expect-error the network is reached through rnnlm/advanced only
      model.network;
      // @ts-expect-error mode is read-only
      model.mode = 'stream';
      // @ts-expect-error the lower layers are not in the main entry
      ${main}.Network;
    `;
    const server = "import { createServer, type RnnlmServer, type ServerOptions } from 'rnnlm/server';";
    writeFileSync(join(dir, 'esm.mts'), `import * as main from 'rnnlm';\nimport * as advanced from 'rnnlm/advanced';\n${server}\n${use('main', 'advanced')}`);
    writeFileSync(join(dir, 'cjs.cts'), `import main = require('rnnlm');\nimport advanced = require('rnnlm/advanced');\n${server}\nexport async function f() {\n${use('main', 'advanced').replace('export const', 'const')}\n}`);
    const compilerOptions = { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, types: ['node'], typeRoots: [join(root, 'node_modules', '@types')] };
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['esm.mts', 'cjs.cts'] }));
    try {
      execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', dir], { encoding: 'utf8' });
    } catch (e) {
      throw new Error(`tsc: ${(e as { stdout?: string }).stdout}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
