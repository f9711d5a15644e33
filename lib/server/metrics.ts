/**
 * The server's Prometheus metrics (GET /metrics), on a registry of its own — two servers in one
 * process do not share counters. Gauges of the queue and the batch are read when scraped.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Endpoints by route, so that unknown paths do not make a label value each. */
export const ENDPOINTS = ['/v1/completions', '/v1/next', '/v1/score', '/v1/models', '/health', '/metrics'] as const;

export interface Load {
  /** Requests waiting for a slot, plus requests queued in the model's scheduler. */
  queued(): number;
  /** Requests holding a slot. */
  active(): number;
  /** Rows the model's scheduler steps now. */
  rows(): number;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({
    name: 'rnnlm_requests_total', help: 'Requests answered, by endpoint and HTTP status (499: the client disconnected first)',
    labelNames: ['endpoint', 'status'] as const, registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: 'rnnlm_request_duration_seconds', help: 'Time from a request\'s arrival to its last byte, by endpoint',
    labelNames: ['endpoint'] as const, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [this.registry],
  });
  private readonly generated = new Counter({ name: 'rnnlm_tokens_generated_total', help: 'Tokens generated (completions)', registers: [this.registry] });
  private readonly prompt = new Counter({ name: 'rnnlm_prompt_tokens_total', help: 'Tokens read from prompts, contexts and scored inputs', registers: [this.registry] });

  constructor(load: Load) {
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({ name, help, registers: [this.registry], collect() { this.set(read()); } });
    gauge('rnnlm_queue_depth', 'Requests waiting: for a slot, or in the model\'s scheduler for a batch row', () => load.queued());
    gauge('rnnlm_requests_active', 'Requests computing (holding a slot)', () => load.active());
    gauge('rnnlm_batch_rows', 'Rows the model\'s scheduler steps together now', () => load.rows());
    collectDefaultMetrics({ register: this.registry });
  }

  /** A request is over: its endpoint (route), HTTP status (499 if its client left), seconds taken and tokens. */
  record(endpoint: string, status: number, seconds: number, promptTokens: number, completionTokens: number): void {
    const e = (ENDPOINTS as readonly string[]).includes(endpoint) ? endpoint : 'other';
    this.requests.inc({ endpoint: e, status: String(status) });
    this.duration.observe({ endpoint: e }, seconds);
    if (promptTokens > 0) this.prompt.inc(promptTokens);
    if (completionTokens > 0) this.generated.inc(completionTokens);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
