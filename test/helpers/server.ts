// Helpers for the service tests: start a service on 127.0.0.1:0 and read server-sent events.

import type { PipelineLike } from '../../lib/api.js';
import { createService, type Service, type ServiceOptions } from '../../lib/server/app.js';
import { LocalBackend, type LocalQueueOptions } from '../../lib/server/jobs.js';

export interface Started {
  service: Service;
  url: string;
}

export async function startLocal(
  models: Map<string, PipelineLike>,
  options: Partial<LocalQueueOptions> = {},
  serviceOptions: Omit<ServiceOptions, 'backend'> = {},
): Promise<Started> {
  const backend = new LocalBackend(models, { concurrency: 1, limit: 8, timeoutMs: 0, keepFinished: 100, ...options });
  const service = await createService({ backend, ...serviceOptions });
  const address = await service.app.listen({ host: '127.0.0.1', port: 0 });
  return { service, url: address };
}

export interface SseEvent {
  event: string;
  data: any;
}

/** Reads an SSE response until it ends (or `until` returns true); returns the events. */
export async function readEvents(
  url: string,
  options: { until?: (e: SseEvent) => boolean; onEvent?: (e: SseEvent) => void; signal?: AbortSignal } = {},
): Promise<SseEvent[]> {
  const res = await fetch(url, { signal: options.signal, headers: { accept: 'text/event-stream' } });
  if (!res.ok || !res.body) throw new Error(`events: HTTP ${res.status}`);
  const events: SseEvent[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = res.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    for (let cut = buffer.indexOf('\n\n'); cut >= 0; cut = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const lines = block.split('\n');
      const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
      const data = lines.find((l) => l.startsWith('data: '))?.slice(6);
      if (!event || data === undefined) continue;
      const e = { event, data: JSON.parse(data) };
      events.push(e);
      options.onEvent?.(e);
      if (options.until?.(e)) {
        await reader.cancel();
        return events;
      }
    }
  }
  return events;
}

export async function postJSON(
  url: string,
  body: unknown,
  init: RequestInit = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    ...init,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

export async function getJSON(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, body };
}

/** Polls until fn returns a truthy value (or fails after timeoutMs). */
export async function until<T>(fn: () => Promise<T> | T, timeoutMs = 10_000, everyMs = 10): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
