// Type declarations of the libwebhook Node binding (index.js).
import { EventEmitter } from 'node:events';

/** The result of one delivery attempt ('outcome' event). */
export interface Outcome {
  kind: 'delivered' | 'retry' | 'dead';
  endpointId: string;
  /** endpoint handle (Endpoint.handle) */
  endpoint: number;
  url: string;
  /** delivery id, the same on every retry */
  id: string;
  type: string;
  channel: string | null;
  /** the payload as emitted */
  data: Buffer;
  attempt: number;
  /** 0 when no response arrived */
  httpStatus: number;
  /** null, or the status name of the failure: 'WH_E_CONNECT', 'WH_E_HTTP_STATUS', ... */
  error: string | null;
  errorMessage: string;
  retryInMs: number;
  latencyMs: number;
}

export interface Stats {
  emitted: number; rejected: number; enqueued: number; requests: number;
  delivered: number; retries: number; dead: number; queued: number;
  inFlight: number; bytesSent: number;
}

export interface EngineOptions {
  max_queued_events?: number;
  max_queued_bytes?: number;
  max_payload_bytes?: number;
  validate_json?: boolean;
  seed?: number;
  log_level?: 0 | 1 | 2 | 3;
}

/** Endpoint options: the keys of an endpoint object of the JSON configuration. */
export interface EndpointOptions {
  id?: string;
  event_types?: string[];
  secret?: string | string[];
  secrets?: string | string[];
  headers?: Record<string, string>;
  filter?: { channel_name_starts_with?: string; channel_name_ends_with?: string };
  timeout_ms?: number;
  connect_timeout_ms?: number;
  max_attempts?: number;
  max_in_flight?: number;
  retry?: string | Record<string, unknown>;
  limits?: { rate?: number; period_ms?: number; burst?: number; ordered?: boolean };
  health?: { disable_on_410?: boolean; breaker_failures?: number;
             breaker_cooldown_ms?: number; disable_after_ms?: number };
  mode?: 'single' | 'batch';
  batch?: { max_events?: number; max_bytes?: number; linger_ms?: number };
  body?: 'raw' | 'standard' | 'pusher' | 'array';
  preset?: 'standard' | 'svix' | 'stream' | 'dyte' | 'pusher' | 'sendbird';
  header_names?: { id?: string; timestamp?: string; attempt?: string;
                   signature?: string; api_key?: string };
  api_key?: string;
  signing?: 'none' | 'standard' | 'pusher' | 'hmac-sha256-hex' | 'rsa-sha256';
  private_key?: string;
  private_key_file?: string;
  [key: string]: unknown;
}

export class Endpoint {
  readonly engine: Engine;
  readonly handle: number;
  readonly id: string;
  readonly url: string;
}

/** An Error thrown by the library: code is the status name ('WH_E_CONFIG', ...). */
export interface WebhookError extends Error { code: string }

export class Engine extends EventEmitter {
  /** config: a configuration document (object, JSON text, or a file path). */
  constructor(config?: object | string | null, options?: EngineOptions);
  addEndpoint(url: string, options?: EndpointOptions): Endpoint;
  removeEndpoint(endpoint: Endpoint | number | string): void;
  /** Queue an event; returns the number of endpoints it was queued for. */
  emit(type: string, data: unknown, opts?: { channel?: string; id?: string }): number;
  emit(event: 'newListener' | 'removeListener', name: string | symbol, fn: (...a: any[]) => void): boolean;
  on(event: 'outcome', listener: (o: Outcome) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'outcome', listener: (o: Outcome) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
  stats(): Stats;
  /** true once nothing is queued or in flight; false after ms. */
  flush(ms?: number): Promise<boolean>;
  pollSync(ms?: number): number;
  flushSync(ms?: number): boolean;
  close(): void;
  readonly closed: boolean;
}

/** Throws a WebhookError (WH_E_SIGNATURE, WH_E_TIMESTAMP, WH_E_INVAL) unless valid. */
export function verifyStandard(secrets: string | string[],
  headers: Record<string, string | string[] | undefined> | { get(name: string): string | null },
  body: Buffer | string, tolerance?: number, now?: number): void;
export function verifyHmacHex(secret: string, body: Buffer | string, signatureHex: string): void;
export function verifyRsaSha256(publicKeyPem: string, body: Buffer | string, signatureB64: string): void;
export function signStandard(secrets: string | string[], id: string, timestamp: number,
  body: Buffer | string): string;
export function statusName(status: number): string;
export const libraryVersion: string;
export const haveLoopApi: boolean;
