// Prometheus text exposition of the queues, the event loop and the process memory.
import type { IntervalHistogram } from 'node:perf_hooks';
import type { QueueStats } from './jobs.js';

function line(name: string, value: number, labels: Record<string, string> = {}): string {
  const l = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`);
  return `${name}${l.length ? `{${l.join(',')}}` : ''} ${Number.isFinite(value) ? value : 0}`;
}

/** The admission budget (in-process queue): loaded weights, activations reserved by running jobs, the limit. */
export interface MemoryStats {
  weightsBytes: number;
  reservedBytes: number;
  maxMemoryBytes?: number;
}

export function metricsText(stats: QueueStats[], loopDelay: IntervalHistogram, memory?: MemoryStats): string {
  const out: string[] = [];
  const gauge = (name: string, help: string, rows: string[]) =>
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, ...rows);
  const counter = (name: string, help: string, rows: string[]) =>
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, ...rows);
  gauge(
    'nd_queue_waiting',
    'jobs waiting per model',
    stats.map((s) => line('nd_queue_waiting', s.queued, { model: s.model })),
  );
  gauge(
    'nd_queue_running',
    'jobs running per model',
    stats.map((s) => line('nd_queue_running', s.running, { model: s.model })),
  );
  gauge(
    'nd_queue_concurrency',
    'configured concurrency per model',
    stats.map((s) => line('nd_queue_concurrency', s.concurrency, { model: s.model })),
  );
  gauge(
    'nd_queue_limit',
    'configured queue limit per model',
    stats.map((s) => line('nd_queue_limit', s.limit, { model: s.model })),
  );
  counter(
    'nd_jobs_total',
    'finished jobs per model and status',
    stats.flatMap((s) => [
      line('nd_jobs_total', s.completed, { model: s.model, status: 'succeeded' }),
      line('nd_jobs_total', s.failed, { model: s.model, status: 'failed' }),
      line('nd_jobs_total', s.cancelled, { model: s.model, status: 'cancelled' }),
    ]),
  );
  gauge(
    'nd_job_run_ms_mean',
    'mean run time of recent jobs, ms',
    stats.map((s) => line('nd_job_run_ms_mean', Math.round(s.meanRunMs), { model: s.model })),
  );
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  gauge('nd_event_loop_delay_ms', 'event loop delay since start, ms', [
    line('nd_event_loop_delay_ms', ms(loopDelay.percentile(50)), { quantile: '0.5' }),
    line('nd_event_loop_delay_ms', ms(loopDelay.percentile(99)), { quantile: '0.99' }),
    line('nd_event_loop_delay_ms', ms(loopDelay.max), { quantile: '1' }),
  ]);
  if (memory) {
    gauge('nd_memory_weights_bytes', 'weights of the loaded models (estimate)', [
      line('nd_memory_weights_bytes', memory.weightsBytes),
    ]);
    gauge('nd_memory_reserved_bytes', 'activations reserved by running jobs (estimate)', [
      line('nd_memory_reserved_bytes', memory.reservedBytes),
    ]);
    if (memory.maxMemoryBytes !== undefined)
      gauge('nd_memory_budget_bytes', 'the --max-memory budget', [
        line('nd_memory_budget_bytes', memory.maxMemoryBytes),
      ]);
  }
  const mem = process.memoryUsage();
  gauge('process_resident_memory_bytes', 'resident set size', [line('process_resident_memory_bytes', mem.rss)]);
  gauge('nodejs_heap_used_bytes', 'V8 heap used', [line('nodejs_heap_used_bytes', mem.heapUsed)]);
  gauge('nodejs_external_memory_bytes', 'memory of Buffers and native objects tracked by V8', [
    line('nodejs_external_memory_bytes', mem.external),
  ]);
  return `${out.join('\n')}\n`;
}
