#!/usr/bin/env node
// Node side of bench section 10 (run by bench/run.py).
//
//   bind_node.mjs emit N                            ns per engine.emit (string, object)
//   bind_node.mjs lib URL N INFLIGHT MODE BODYFILE  libwebhook on Node's loop: N signed
//        events, single (max_in_flight INFLIGHT) or batch (1000 per request); from the
//        first emit to `await flush()`
//   bind_node.mjs undici URL N INFLIGHT MODE BODYFILE  the sender a Node developer writes
//        by hand: an undici Pool (connections INFLIGHT; npm's undici from
//        bench/node_modules) with INFLIGHT concurrent requests, each signed like Standard
//        Webhooks with node:crypto; without the npm package, Node's built-in fetch
//        (undici inside) with a keep-alive agent -- printed as sender=fetch
// Prints "RESULT name key=value ..." lines.
import fs from 'node:fs';
import crypto from 'node:crypto';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const lib = require(path.join(here, '..', 'bindings', 'node'));
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const BATCH = 1000;
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) * 1000; }; // ns
const now = () => Number(process.hrtime.bigint());

async function benchEmit(n) {
  const payload = '{"room":"room-1","user":"u-1","text":"hello, world"}';
  for (const [kind, data] of [['string', payload], ['object', JSON.parse(payload)]]) {
    const e = new lib.Engine(null, { max_queued_events: 2 * n });
    e.addEndpoint('http://127.0.0.1:9/never');
    const opts = { channel: 'room-1' };
    for (let i = 0; i < 1000; i++) e.emit('message.sent', data, opts);
    const t = now();
    for (let i = 0; i < n; i++) e.emit('message.sent', data, opts);
    console.log(`RESULT node_emit kind=${kind} ns=${((now() - t) / n).toFixed(1)}`);
    e.close();
  }
}

async function benchLib(url, n, inflight, mode, body) {
  const e = new lib.Engine();
  const opts = { secret: SECRET, max_in_flight: inflight };
  if (mode === 'batch') opts.batch = { max_events: BATCH };
  e.addEndpoint(url, opts);
  let delivered = 0;
  e.on('outcome', (o) => { if (o.kind === 'delivered') delivered++; });
  const c0 = cpu(); const t0 = now();
  for (let i = 0; i < n; i += 1000) {
    for (let j = i; j < Math.min(n, i + 1000); j++) e.emit('message.sent', body, { channel: 'room-1' });
    await new Promise((r) => setImmediate(r));
  }
  const ok = await e.flush(600000);
  const dt = (now() - t0) / 1e9; const dc = cpu() - c0;
  e.close();
  if (!ok || delivered !== n) throw new Error(`lib: drained=${ok} delivered=${delivered} of ${n}`);
  console.log(`RESULT node_lib mode=${mode} inflight=${inflight} n=${n} eps=${(n / dt).toFixed(0)} cpu_ns_per_event=${(dc / n).toFixed(0)}`);
}

async function benchUndici(url, n, inflight, mode, body) {
  let Pool = null;
  try { ({ Pool } = require(path.join(here, 'node_modules', 'undici'))); } catch { /* built-in fetch */ }
  const key = Buffer.from(SECRET.slice(6), 'base64');
  const per = mode === 'batch' ? BATCH : 1;
  const requests = Math.ceil(n / per);
  const u = new URL(url);
  const pool = Pool ? new Pool(u.origin, { connections: inflight, pipelining: 1 }) : null;
  let next = 0; let delivered = 0;
  async function worker() {
    while (next < requests) {
      const r = next++;
      const k = Math.min(per, n - r * per);
      const data = mode === 'batch' ? `[${Array(k).fill(body).join(',')}]` : body;
      const id = crypto.randomUUID();
      const ts = String(Math.floor(Date.now() / 1000));
      const sig = crypto.createHmac('sha256', key).update(`${id}.${ts}.`).update(data).digest('base64');
      const headers = { 'content-type': 'application/json', 'webhook-id': id,
        'webhook-timestamp': ts, 'webhook-signature': `v1,${sig}` };
      let status;
      if (pool) {
        const res = await pool.request({ path: u.pathname, method: 'POST', headers, body: data });
        status = res.statusCode;
        await res.body.dump();
      } else {
        const res = await fetch(url, { method: 'POST', headers, body: data });
        status = res.status;
        await res.arrayBuffer();
      }
      if (status >= 200 && status < 300) delivered += k;
    }
  }
  const c0 = cpu(); const t0 = now();
  await Promise.all(Array.from({ length: inflight }, worker));
  const dt = (now() - t0) / 1e9; const dc = cpu() - c0;
  if (pool) await pool.close();
  if (delivered !== n) throw new Error(`undici: delivered ${delivered} of ${n}`);
  console.log(`RESULT node_undici sender=${pool ? 'pool' : 'fetch'} mode=${mode} inflight=${inflight} n=${n} eps=${(n / dt).toFixed(0)} cpu_ns_per_event=${(dc / n).toFixed(0)}`);
}

const [cmd, ...a] = process.argv.slice(2);
if (cmd === 'emit') await benchEmit(Number(a[0]));
else {
  const [url, n, inflight, mode, file] = a;
  const body = fs.readFileSync(file, 'utf8').trim();
  const fn = { lib: benchLib, undici: benchUndici }[cmd];
  await fn(url, Number(n), Number(inflight), mode, body);
}
