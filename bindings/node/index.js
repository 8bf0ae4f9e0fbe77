'use strict';
// libwebhook for Node.js: signed, retried webhook delivery by the C library,
// driven by Node's own event loop (the addon attaches the engine to libuv).
//
//   const { Engine } = require('libwebhook');
//   const engine = new Engine();
//   engine.addEndpoint('http://127.0.0.1:8080/hook', { secret: 'whsec_...' });
//   engine.on('outcome', (o) => console.log(o.kind, o.endpointId, o.httpStatus));
//   engine.emit('message.sent', { text: 'hi' }, { channel: 'room-1' });
//   await engine.flush(5000);
//   engine.close();
//
// Errors are Error objects whose `code` is the library's status name
// ('WH_E_CONFIG', 'WH_E_FULL', ...); the message is wh_last_error()'s.
const { EventEmitter } = require('node:events');
const path = require('node:path');
const fs = require('node:fs');

const native = require(path.join(__dirname, 'build', 'libwebhook.node'));

const ENGINE_OPTIONS = ['max_queued_events', 'max_queued_bytes', 'max_payload_bytes',
  'validate_json', 'seed', 'log_level'];

function libError(code, message) {
  const err = new Error(message);
  err.code = code;
  return err;
}

class Endpoint {
  constructor(engine, handle, id, url) {
    this.engine = engine;
    this.handle = handle;
    this.id = id;
    this.url = url;
  }
}

class Engine extends EventEmitter {
  /**
   * @param {object|string} [config] a configuration document (object, JSON
   *   text or a file path): its `endpoints` are added, its `queue` selects the
   *   queue backend.  Engine options (max_queued_events, max_payload_bytes,
   *   validate_json, seed, log_level) may be given in `options`.
   * @param {object} [options]
   */
  constructor(config, options = {}) {
    super();
    let doc = null;
    if (config === undefined || config === null) {
      doc = null;
    } else if (typeof config === 'string' && !config.trimStart().startsWith('{')) {
      try {
        doc = fs.readFileSync(config, 'utf8');
      } catch (e) {
        throw libError('WH_E_IO', `${config}: ${e.message}`);
      }
    } else if (typeof config === 'string') {
      doc = config;
    } else if (typeof config === 'object') {
      doc = JSON.stringify(config);
    } else {
      throw new TypeError('Engine: config must be an object, JSON text or a path');
    }
    for (const k of Object.keys(options)) {
      if (!ENGINE_OPTIONS.includes(k)) throw new TypeError(`Engine: unknown option '${k}'`);
    }
    const opts = { ...options };
    if ('validate_json' in opts) opts.validate_json = opts.validate_json ? 1 : 0;
    let parsed = null;
    if (doc !== null) {
      try { parsed = JSON.parse(doc); } catch { parsed = null; }
    }
    const queue = parsed && typeof parsed === 'object' && 'queue' in parsed ? doc : null;
    this._flushWaiters = [];
    this._endpoints = new Map();
    this._closed = false;
    this._native = new native.NativeEngine((json, data) => this._onOutcomes(json, data), opts, queue);
    if (doc !== null) {
      this._native.configLoad(doc);
      for (const ep of [...(parsed?.endpoints || []), ...(parsed?.webhooks || [])]) {
        if (ep && typeof ep.id === 'string') {
          const h = this._native.endpointFind(ep.id);
          if (h > 0) this._endpoints.set(h, new Endpoint(this, h, ep.id, ep.url));
        }
      }
    }
  }

  /**
   * Add an endpoint.  Option names are those of an endpoint object of the
   * JSON configuration: id, secret (string or array), event_types, headers,
   * filter, timeout_ms, max_attempts, max_in_flight, retry, mode, batch,
   * body, preset, signing, limits, health, ...
   * @returns {Endpoint}
   */
  addEndpoint(url, options = {}) {
    if (typeof url !== 'string') throw new TypeError('addEndpoint: url must be a string');
    const ep = { url };
    for (const [k, v] of Object.entries(options)) if (v !== undefined) ep[k] = v;
    if (ep.id === undefined) {
      let n = this._endpoints.size + 1;
      while (this._native.endpointFind(`ep-${n}`) > 0) n++;
      ep.id = `ep-${n}`;
    }
    try {
      this._native.configLoad(JSON.stringify({ endpoints: [ep] }));
    } catch (e) {
      if (typeof e.message === 'string') e.message = e.message.replace(/endpoints\[0\]\./g, '');
      throw e;
    }
    const h = this._native.endpointFind(ep.id);
    const e = new Endpoint(this, h, ep.id, url);
    this._endpoints.set(h, e);
    return e;
  }

  /** Remove an endpoint (Endpoint, handle or id); its pending deliveries are
   * reported as 'dead' with error 'WH_E_CANCELLED'. */
  removeEndpoint(ep) {
    let h = ep instanceof Endpoint ? ep.handle : ep;
    if (typeof h === 'string') h = this._native.endpointFind(h);
    if (typeof h !== 'number' || h <= 0) throw libError('WH_E_NOT_FOUND', 'no such endpoint');
    this._native.endpointRemove(h);
    this._endpoints.delete(h);
  }

  /**
   * Accept an event.  data: Buffer or string (sent as is) or any value
   * (JSON.stringify).  Returns the number of endpoints it was queued for.
   */
  emit(type, data, opts) {
    // EventEmitter itself emits 'newListener' / 'removeListener' (event, fn)
    if (typeof opts === 'function' && (type === 'newListener' || type === 'removeListener')) {
      return EventEmitter.prototype.emit.call(this, type, data, opts);
    }
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) data = JSON.stringify(data);
    if (opts === undefined) return this._native.emit(type, data);
    return this._native.emit(type, data, opts.channel, opts.id);
  }

  /** The engine's counters. */
  stats() { return this._native.stats(); }

  /**
   * Resolve true once nothing is queued or in flight, false after `ms`.
   * The engine runs on Node's loop meanwhile; nothing polls.
   */
  flush(ms = 30000) {
    if (this._closed) return Promise.resolve(true);
    const s = this._native.stats();
    if (s.queued === 0 && s.inFlight === 0) return Promise.resolve(true);
    if (!native.haveLoopApi) {
      // a library without the host-loop API: block in wh_flush
      return Promise.resolve(this._native.flushSync(ms));
    }
    return new Promise((resolve) => {
      const w = { resolve, timer: null };
      w.timer = setTimeout(() => {
        this._flushWaiters = this._flushWaiters.filter((x) => x !== w);
        resolve(false);
      }, ms);
      this._flushWaiters.push(w);
    });
  }

  /** Drive the engine by hand (hosts not running Node's loop): one round. */
  pollSync(ms = 0) { return this._native.pollSync(ms); }

  /** Blocking flush (no loop needed). */
  flushSync(ms = 30000) { return this._native.flushSync(ms); }

  /** Free the engine; what is still queued is reported as cancelled. */
  close() {
    if (this._closed) return;
    this._closed = true;
    this._native.close();
    for (const w of this._flushWaiters.splice(0)) {
      clearTimeout(w.timer);
      w.resolve(true);
    }
  }

  get closed() { return this._closed; }

  // json: the outcomes as a JSON array whose "data" fields hold the payload
  // lengths; data: the payloads one after the other
  _onOutcomes(json, data) {
    const outcomes = JSON.parse(`[${json}]`);
    let off = 0;
    for (const o of outcomes) {
      const n = o.data;
      o.data = data.subarray(off, off + n);
      off += n;
    }
    for (const o of outcomes) EventEmitter.prototype.emit.call(this, 'outcome', o);
    if (this._flushWaiters.length && !this._closed) {
      const s = this._native.stats();
      if (s.queued === 0 && s.inFlight === 0) {
        for (const w of this._flushWaiters.splice(0)) {
          clearTimeout(w.timer);
          w.resolve(true);
        }
      }
    }
  }
}

function header(headers, ...names) {
  if (typeof headers.get === 'function') {
    for (const n of names) { const v = headers.get(n); if (v != null) return String(v); }
    return undefined;
  }
  const low = {};
  for (const [k, v] of Object.entries(headers)) low[k.toLowerCase()] = Array.isArray(v) ? v[0] : v;
  for (const n of names) if (low[n] != null) return String(low[n]);
  return undefined;
}

function check(st, what) {
  if (st !== 0) throw libError(native.statusName(st), `${what}: ${native.strerror(st)}`);
}

/**
 * Verify a Standard Webhooks request: `headers` as node:http gives them (or
 * a Headers object), `body` the raw Buffer/string.  Throws an Error with code
 * 'WH_E_SIGNATURE', 'WH_E_TIMESTAMP' or 'WH_E_INVAL'.
 */
function verifyStandard(secrets, headers, body, tolerance = 300, now) {
  if (typeof secrets === 'string') secrets = [secrets];
  const id = header(headers, 'webhook-id', 'svix-id');
  const ts = header(headers, 'webhook-timestamp', 'svix-timestamp');
  const sig = header(headers, 'webhook-signature', 'svix-signature');
  if (id === undefined || ts === undefined || sig === undefined) {
    throw libError('WH_E_INVAL', 'missing webhook-id, webhook-timestamp or webhook-signature header');
  }
  const t = now === undefined ? Math.floor(Date.now() / 1000) : now;
  check(native.verifyStandard(secrets, id, ts, body, sig, t, tolerance), `webhook-id ${id}`);
}

/** Verify a hex HMAC-SHA256 of body (Pusher, Stream, Sendbird). */
function verifyHmacHex(secret, body, signatureHex) {
  check(native.verifyHmacHex(secret, body, signatureHex), 'hmac');
}

/** Verify a base64 RSA-SHA256 signature (Dyte) with a PEM public key. */
function verifyRsaSha256(publicKeyPem, body, signatureB64) {
  check(native.verifyRsaSha256(publicKeyPem, body, signatureB64), 'rsa-sha256');
}

/** The webhook-signature value the engine sends for this message. */
function signStandard(secrets, id, timestamp, body) {
  if (typeof secrets === 'string') secrets = [secrets];
  return native.signStandard(secrets, id, timestamp, body);
}

module.exports = {
  Engine, Endpoint, verifyStandard, verifyHmacHex, verifyRsaSha256, signStandard,
  statusName: native.statusName, libraryVersion: native.libraryVersion,
  haveLoopApi: native.haveLoopApi,
};
