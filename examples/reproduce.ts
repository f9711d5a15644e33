// What both reproduce scripts share: fit under a time budget with validation every epoch,
// keeping the best epoch's weights (early stopping after `patience` epochs without
// improvement), a learning-curve row per epoch, and the JSON report.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend, type DeviceOption } from '../lib/backend/index';
import { LanguageModel, type EpochLog, type FitOptions } from '../lib/index';

export interface BestRun {
  history: EpochLog[];
  /** Best validation loss and its epoch (0 when no epoch finished). */
  bestLoss: number;
  bestEpoch: number;
  wallSeconds: number;
  /** The best epoch's weights (the trained model itself when no epoch finished); caller disposes. */
  best: LanguageModel;
}

export async function fitKeepingBest(
  model: LanguageModel,
  train: string,
  valid: string,
  fit: FitOptions,
  o: { minutes: number; patience: number; row: (log: EpochLog, minutes: number) => string },
): Promise<BestRun> {
  const dir = mkdtempSync(join(tmpdir(), 'rnnlm-reproduce-'));
  const file = join(dir, 'best.safetensors');
  // One controller for both ends: early stopping and the time budget (a plain timer; a composite
  // AbortSignal.any of a timeout signal can lose the timeout to garbage collection on Node 20).
  const stop = new AbortController();
  const budget = setTimeout(() => stop.abort(new DOMException('time budget reached', 'TimeoutError')), o.minutes * 60_000);
  const history: EpochLog[] = [];
  let bestLoss = Infinity, bestEpoch = 0, bad = 0;
  const t0 = Date.now();
  try {
    await model.fit(train, {
      ...fit,
      validation: valid,
      signal: stop.signal,
      onEpochEnd: async (log, m) => {
        history.push(log);
        console.log(o.row(log, (Date.now() - t0) / 60_000));
        if (log.valLoss! < bestLoss) {
          bestLoss = log.valLoss!;
          bestEpoch = log.epoch;
          bad = 0;
          await m.save(file);
        } else if (++bad >= o.patience) {
          stop.abort();
        }
      },
    });
  } catch (e) {
    const name = (e as Error).name;
    if (name !== 'TimeoutError' && name !== 'AbortError') throw e;
  } finally {
    clearTimeout(budget);
  }
  const wallSeconds = (Date.now() - t0) / 1000;
  const best = bestEpoch > 0 ? await LanguageModel.load(file, { device: model.device }) : model;
  rmSync(dir, { recursive: true, force: true });
  return { history, bestLoss, bestEpoch, wallSeconds, best };
}

/** Writes reproduce-<name>-<device>.json with the machine's description to bench/results (RESULTS_DIR elsewhere: the GPU check points it at $OUT). */
export function writeReport(name: string, device: string, report: Record<string, unknown>): string {
  const dir = process.env.RESULTS_DIR ?? join(__dirname, '..', 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `reproduce-${name}-${device}.json`);
  const out = { device, cpu: cpus()[0]?.model, cores: cpus().length, node: process.version, date: new Date().toISOString(), ...report };
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  return file;
}

/**
 * DEVICE (cpu, the default; cuda; auto) resolved to the device that will run, so that a script
 * picks the recipe sized for it; MINUTES overrides the device's time budget.
 */
export function deviceAndMinutes(minutes: { cpu: number; cuda: number }): { device: 'cpu' | 'cuda'; minutes: number } {
  const device = selectBackend((process.env.DEVICE ?? 'cpu') as DeviceOption).backend.device;
  return { device, minutes: Number(process.env.MINUTES ?? minutes[device]) };
}

/** A continuous cache tuned on `valid` (theta x lambda, size 2000), then `test` scored with it (tuned on one text, scored on another). */
export async function cacheOnTest(model: LanguageModel, valid: string, test: string, seqLength = 35) {
  const t0 = Date.now();
  const tuned = await model.tuneCache(valid, { size: 2000, seqLength });
  const { perplexity, loss } = await model.evaluate(test, { seqLength, cache: { size: tuned.size, theta: tuned.theta, lambda: tuned.lambda } });
  const seconds = (Date.now() - t0) / 1000;
  console.log(`cache (size ${tuned.size}, theta ${tuned.theta}, lambda ${tuned.lambda}; tuning text ${tuned.baseline.toFixed(2)} -> ${tuned.perplexity.toFixed(2)}): scored text perplexity ${perplexity.toFixed(2)}, loss ${loss.toFixed(4)} (${seconds.toFixed(0)} s)`);
  return { size: tuned.size, theta: tuned.theta, lambda: tuned.lambda, validPerplexity: tuned.perplexity, validBaseline: tuned.baseline, testPerplexity: perplexity, testLoss: loss, seconds };
}

export function runMain(main: () => Promise<void>) {
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
