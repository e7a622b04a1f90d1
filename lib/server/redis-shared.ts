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
  retryStrategy: (times: number) => number;
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
    retryStrategy,
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

/** What RedisHealth needs of a client: ioredis connection events. */
interface EventSource {
  on(event: 'ready' | 'close' | 'end', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

/**
 * Whether Redis answers, from the clients' connection events: one log line per change of state (not a
 * stack trace per reconnect attempt), the reason while it is down, a listener for recovery. Every client
 * that watch() sees also gets an 'error' listener, so ioredis never reports an unhandled error event.
 */
export class RedisHealth {
  /** undefined until the first connection attempt ends (so the first state is logged too) */
  private state: boolean | undefined;
  reason = 'connecting to Redis';
  private readonly clients = new Map<EventSource, boolean>();

  constructor(
    private readonly what: string,
    private readonly log: (line: string) => void,
  ) {}

  watch(client: EventSource): void {
    this.clients.set(client, false);
    client.on('ready', () => this.set(client, true));
    client.on('error', (err) => this.set(client, false, err.message || String(err)));
    // 'close' follows every failed attempt: keep the error's reason (ECONNREFUSED …)
    client.on('close', () => this.set(client, false));
    client.on('end', () => this.set(client, false));
  }

  private set(client: EventSource, ready: boolean, reason?: string): void {
    this.clients.set(client, ready);
    this.change([...this.clients.values()].every(Boolean), reason);
  }

  get up(): boolean {
    return this.state === true;
  }

  private change(up: boolean, reason?: string): void {
    if (!up && reason) this.reason = reason;
    else if (!up && this.state === true) this.reason = 'the connection to Redis was lost';
    if (up === this.state) return;
    const first = this.state === undefined;
    this.state = up;
    this.log(
      up
        ? `${this.what}: Redis is reachable${first ? '' : ' again'}`
        : `${this.what}: Redis is unreachable (${this.reason})`,
    );
  }
}

/** Reconnect for ever, backing off to one attempt every 2 s. */
export function retryStrategy(times: number): number {
  return Math.min(100 * times, 2000);
}
