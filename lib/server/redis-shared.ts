// What the Redis-backed server and its workers agree on: connection options from a URL, queue and
// key names, the stored result shape and how failures are encoded.
import type { ModelEntry } from './jobs.js';

export interface RedisConnection {
  host: string;
  port: number;
  db?: number;
  username?: string;
  password?: string;
  /** BullMQ workers need blocking commands without a retry limit */
  maxRetriesPerRequest: null;
}

export function parseRedisUrl(url: string): RedisConnection {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`Expected a redis:// URL for --queue but received ${JSON.stringify(url)}`);
  }
  if (u.protocol !== 'redis:')
    throw new Error(`Expected a redis:// URL for --queue but received ${JSON.stringify(url)}`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : undefined;
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    db,
    username: u.username || undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    maxRetriesPerRequest: null,
  };
}

/** Keys live under one prefix so several deployments can share a Redis. */
export const keys = (prefix: string) => ({
  /** hash: model name → RegisteredModel JSON */
  models: `${prefix}:models`,
  /** hash: worker id → RegisteredWorker JSON */
  workers: `${prefix}:workers`,
  /** pub/sub channel: job ids to cancel */
  cancelChannel: `${prefix}:cancel`,
  /** string with TTL: set while a job is cancelled (a worker that picks it up later sees it) */
  cancelled: (id: string) => `${prefix}:cancelled:${id}`,
  /** string with TTL: final snapshot of a job cancelled while waiting (removed from BullMQ) */
  removed: (id: string) => `${prefix}:removed:${id}`,
});

export const queueName = (model: string) => `generate-${model}`;

export interface RegisteredModel {
  entry: ModelEntry;
  at: number;
}

export interface RegisteredWorker {
  models: string[];
  concurrency: number;
  at: number;
}

/** Registrations older than this are from workers that died. */
export const HEARTBEAT_MS = 2000;
export const STALE_MS = 15_000;

export interface StoredImage {
  png: string; // base64
  seed: string;
  parameters: string;
  width: number;
  height: number;
}

export interface StoredResult {
  images: StoredImage[];
  worker: string;
}

/** failedReason is "CODE: message" so the server can map it to an HTTP status. */
export function encodeFailure(code: string, message: string): string {
  return `${code}: ${message}`;
}

export function decodeFailure(reason: string | undefined): { code: string; message: string } {
  const m = /^(ERR_[A-Z_]+): ([\s\S]*)$/.exec(reason ?? '');
  return m ? { code: m[1], message: m[2] } : { code: 'ERR_INTERNAL', message: reason || 'The job failed' };
}
