// Crash safety: SIGKILL at random moments during save() and during fit() with periodic
// checkpoints. Afterwards the checkpoint on disk always loads, and resuming reaches exactly the
// losses of an uninterrupted run with the same seed. CRASH_CASES scales the number of kills
// (npm run test:stress runs more).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { LanguageModel } from '../../lib/model';
import { Random } from '../../lib/util/random';

const cases = Number(process.env.CRASH_CASES ?? 6);
const child = join(__dirname, 'children', 'crash-child.ts');
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const freshDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'rnnlm-crash-'));
  dirs.push(d);
  return d;
};

interface Run {
  lines: string[];
  /** Milliseconds from the `from` line to the exit. */
  tail: number;
  killedAfter?: string;
  code: number | null;
}

/** Runs the child; with `killAfterMs`, SIGKILLs it that long after it printed `from` for the `nth` time. */
function run(mode: 'save' | 'fit', dir: string, killAfterMs?: number, from = mode === 'fit' ? 'ready' : 'saved', nth = 1): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, mode, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let err = '';
    let killed: string | undefined;
    let fromAt = performance.now();
    let seen = 0;
    p.stdout.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n').filter(Boolean)) {
        lines.push(line);
        if (line === from) (fromAt = performance.now()), seen++;
        if (killAfterMs !== undefined && line === from && seen === nth && !p.killed) {
          setTimeout(() => {
            killed = lines[lines.length - 1];
            p.kill('SIGKILL');
          }, killAfterMs);
          killAfterMs = undefined;
        }
      }
    });
    p.stderr.on('data', (d: Buffer) => void (err += d.toString()));
    p.on('exit', (code) => {
      if (!killed && code !== 0) reject(new Error(`child ${mode} failed (${code}): ${err}`));
      else resolve({ lines, killedAfter: killed, code, tail: performance.now() - fromAt });
    });
  });
}

test(`SIGKILL during save (${cases * 3} kills): the checkpoint always loads`, async () => {
  const rng = new Random(1);
  let midSave = 0;
  for (let i = 0; i < cases * 3; i++) {
    const dir = freshDir();
    // Half the kills at any moment of the train-and-save loop, half just after a save began
    // (the second one, so that a checkpoint exists): timing-independent hits inside saves.
    const r = i % 2 ? await run('save', dir, rng.uniform(0, 5), 'saving', 2) : await run('save', dir, rng.uniform(0, 60));
    if (r.killedAfter === 'saving') midSave++;
    const path = join(dir, 'model.safetensors');
    expect(existsSync(path), 'the first save completed before the kill').toBe(true);
    const m = await LanguageModel.load(path);
    expect(Number.isFinite((await m.evaluate('the cat sat on the mat .')).loss)).toBe(true);
    m.dispose();
  }
  console.log(`${cases * 3} kills during the save loop, ${midSave} of them while a save was in progress: 0 unreadable checkpoints`);
  expect(midSave).toBeGreaterThan(0); // the kills really did land inside saves
}, 600_000);

test(`SIGKILL during fit with checkpoints (${cases} kills): resuming gives the uninterrupted losses`, async () => {
  const ref = await run('fit', freshDir());
  const duration = ref.tail;
  const expected = JSON.parse(ref.lines[ref.lines.length - 1]);
  const rng = new Random(2);
  let kills = 0;
  for (let tries = 0; kills < cases && tries < 3 * cases; tries++) {
    const dir = freshDir();
    const path = join(dir, 'model.safetensors');
    const killed = await run('fit', dir, rng.uniform(0, duration * 0.7));
    if (!killed.killedAfter) continue; // this run was faster than the kill: try another point
    kills++;
    if (existsSync(path)) (await LanguageModel.load(path)).dispose(); // the last checkpoint loads
    const resumed = await run('fit', dir);
    expect(JSON.parse(resumed.lines[resumed.lines.length - 1])).toEqual(expected);
    // The finished run leaves the model and the state it kept; the previous state is gone (a kill
    // may leave a stray .NAME.PID.RANDOM.tmp, which is hidden).
    expect(readdirSync(dir).filter((f) => !f.startsWith('.')).sort()).toEqual(['model.safetensors', 'model.train.safetensors']);
  }
  expect(kills).toBe(cases);
  console.log(`${cases} kills during a ${duration.toFixed(0)} ms fit: every resume reached the uninterrupted losses ${JSON.stringify(expected.losses)}`);
}, 600_000);
