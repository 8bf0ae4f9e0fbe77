'use strict';
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');
const crypto = require('node:crypto');
const { spawnSync, execFileSync } = require('node:child_process');
const lib = require('..');
const { Engine } = lib;
const { exampleReceiver, httpReceiver, standardOk, SECRET, BIN } = require('./helpers');

const loopSkip = lib.haveLoopApi ? false : 'libwebhook built without the host-loop API';

test('delivers signed events to the example receiver', async (t) => {
  const rec = exampleReceiver(40);
  if (!rec) return t.skip('build/bin/receiver not built');
  await rec.start();
  try {
    const e = new Engine();
    const ep = e.addEndpoint(rec.url, { secret: SECRET, max_in_flight: 8 });
    const outs = [];
    e.on('outcome', (o) => outs.push(o));
    for (let i = 0; i < 40; i++) assert.strictEqual(e.emit('message.sent', { i }, { channel: 'room-1' }), 1);
    assert.strictEqual(await e.flush(20000), true);
    assert.strictEqual(outs.length, 40);
    for (const o of outs) {
      assert.strictEqual(o.kind, 'delivered');
      assert.strictEqual(o.httpStatus, 204);
      assert.strictEqual(o.error, null);
      assert.strictEqual(o.endpointId, ep.id);
      assert.strictEqual(o.channel, 'room-1');
      assert.strictEqual(o.attempt, 1);
    }
    assert.strictEqual(new Set(outs.map((o) => o.id)).size, 40);
    assert.deepStrictEqual(outs.map((o) => JSON.parse(o.data).i).sort((a, b) => a - b),
      [...Array(40).keys()]);
    const s = await rec.summary();
    assert.strictEqual(s.verified, 40);
    assert.strictEqual(s.distinct_ids, 40);
    assert.strictEqual(e.stats().delivered, 40);
    e.close();
  } finally { rec.stop(); }
});

test('retry then dead, with ids kept', async (t) => {
  const rec = exampleReceiver(1, 'whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB');
  if (!rec) return t.skip('build/bin/receiver not built');
  await rec.start();
  try {
    const e = new Engine({ endpoints: [{ id: 'bad-secret', url: rec.url, secret: SECRET, max_attempts: 2,
      retry: { initial_ms: 10, max_ms: 10, retry_4xx: true } }] });
    const outs = [];
    e.on('outcome', (o) => outs.push(o));
    e.emit('x', Buffer.from('{}'));
    assert.strictEqual(await e.flush(10000), true);
    assert.deepStrictEqual(outs.map((o) => [o.kind, o.attempt, o.httpStatus, o.error]),
      [['retry', 1, 401, 'WH_E_HTTP_STATUS'], ['dead', 2, 401, 'WH_E_HTTP_STATUS']]);
    assert.strictEqual(outs[0].id, outs[1].id);
    assert.strictEqual(outs[0].endpointId, 'bad-secret');
    e.close();
  } finally { rec.stop(); }
});

test('errors carry the status name as code', () => {
  const e = new Engine();
  assert.throws(() => e.addEndpoint('ftp://127.0.0.1/x'), (err) => err.code === 'WH_E_CONFIG' && /url/.test(err.message));
  assert.throws(() => e.addEndpoint('http://127.0.0.1:1/', { timeout_ms: -1 }),
    (err) => err.code === 'WH_E_CONFIG' && /timeout_ms/.test(err.message));
  assert.throws(() => e.addEndpoint('http://127.0.0.1:1/', { no_such: 1 }),
    (err) => err.code === 'WH_E_CONFIG' && /no_such/.test(err.message));
  e.addEndpoint('http://127.0.0.1:1/', { id: 'dup' });
  assert.throws(() => e.addEndpoint('http://127.0.0.1:1/', { id: 'dup' }), { code: 'WH_E_EXISTS' });
  assert.throws(() => e.emit('t', '{nope'), { code: 'WH_E_JSON' });
  assert.throws(() => e.emit('', '{}'), { code: 'WH_E_INVAL' });
  assert.throws(() => e.emit(5, '{}'), TypeError);
  assert.throws(() => new Engine('{"endpoints": 3}'), { code: 'WH_E_CONFIG' });
  assert.throws(() => new Engine('/nonexistent/libwebhook.json'), { code: 'WH_E_IO' });
  assert.throws(() => new Engine({ queue: { type: 'memory', max_events: 0 } }), { code: 'WH_E_CONFIG' });
  assert.throws(() => new Engine(null, { bogus: 1 }), TypeError);
  const small = new Engine(null, { max_payload_bytes: 16 });
  small.addEndpoint('http://127.0.0.1:1/');
  assert.throws(() => small.emit('t', { x: 'y'.repeat(100) }), { code: 'WH_E_TOO_LARGE' });
  const full = new Engine(null, { max_queued_events: 1 });
  full.addEndpoint('http://127.0.0.1:1/');
  full.emit('t', '{}');
  assert.throws(() => full.emit('t', '{}'), { code: 'WH_E_FULL' });
  e.close(); small.close(); full.close();
  assert.throws(() => e.emit('t', '{}'), { code: 'ERR_ENGINE_CLOSED' });
});

test('removeEndpoint reports cancelled deliveries', () => {
  const e = new Engine();
  const ep = e.addEndpoint('http://127.0.0.1:9/', { retry: { initial_ms: 60000, max_ms: 60000 } });
  const outs = [];
  e.on('outcome', (o) => outs.push(o));
  e.emit('t', '{}');
  e.removeEndpoint(ep);
  assert.deepStrictEqual(outs.map((o) => [o.kind, o.error]), [['dead', 'WH_E_CANCELLED']]);
  assert.throws(() => e.removeEndpoint(ep), { code: 'WH_E_NOT_FOUND' });
  e.close();
});

test('verify helpers without an engine', () => {
  const body = Buffer.from('{"x":1}');
  const ts = Math.floor(Date.now() / 1000);
  const sig = lib.signStandard(SECRET, 'msg_1', ts, body);
  const h = { 'webhook-id': 'msg_1', 'webhook-timestamp': String(ts), 'webhook-signature': sig };
  assert.ok(standardOk(SECRET, h, body));
  lib.verifyStandard(SECRET, h, body);
  lib.verifyStandard(SECRET, new Headers(h), body.toString());
  assert.throws(() => lib.verifyStandard(SECRET, h, '{"x":2}'), { code: 'WH_E_SIGNATURE' });
  const oldTs = ts - 1000;
  const old = { ...h, 'webhook-timestamp': String(oldTs), 'webhook-signature': lib.signStandard(SECRET, 'msg_1', oldTs, body) };
  assert.throws(() => lib.verifyStandard(SECRET, old, body), { code: 'WH_E_TIMESTAMP' });
  lib.verifyStandard(SECRET, old, body, 2000);
  assert.throws(() => lib.verifyStandard(SECRET, {}, body), { code: 'WH_E_INVAL' });
  const hex = crypto.createHmac('sha256', 'app-secret').update(body).digest('hex');
  lib.verifyHmacHex('app-secret', body, hex);
  assert.throws(() => lib.verifyHmacHex('other', body, hex), { code: 'WH_E_SIGNATURE' });
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsa = crypto.sign('sha256', body, privateKey).toString('base64');
  const pem = publicKey.export({ type: 'spki', format: 'pem' });
  lib.verifyRsaSha256(pem, body, rsa);
  assert.throws(() => lib.verifyRsaSha256(pem, 'other', rsa), { code: 'WH_E_SIGNATURE' });
  assert.throws(() => lib.verifyRsaSha256('not a key', body, rsa), { code: 'WH_E_SECRET' });
});

test("Node's loop drives a lone event: no flush, no timer", { skip: loopSkip }, async () => {
  let got;
  const arrived = new Promise((r) => { got = r; });
  const rec = await httpReceiver((r) => got(r));
  try {
    const e = new Engine();
    e.addEndpoint(rec.url, { secret: SECRET });
    const outcome = new Promise((r) => e.once('outcome', r));
    e.emit('lonely', { only: true });
    const r = await arrived;
    assert.ok(standardOk(SECRET, r.headers, r.body));
    const o = await outcome;
    assert.strictEqual(o.kind, 'delivered');
    e.close();
  } finally { await rec.close(); }
});

test('in-process node:http receiver, standardwebhooks package verifies', { skip: loopSkip }, async (t) => {
  let Webhook = null;
  try { ({ Webhook } = require(path.join(__dirname, 'node_modules', 'standardwebhooks'))); } catch { /* none */ }
  const n = 300;
  const rec = await httpReceiver();
  try {
    const e = new Engine();
    e.addEndpoint(rec.url, { secret: SECRET, max_in_flight: 16 });
    for (let i = 0; i < n; i++) e.emit('m', { i });
    assert.strictEqual(await e.flush(20000), true);
    assert.strictEqual(rec.requests.length, n);
    assert.strictEqual(new Set(rec.requests.map((r) => r.headers['webhook-id'])).size, n);
    for (const r of rec.requests) {
      assert.ok(standardOk(SECRET, r.headers, r.body));
      lib.verifyStandard(SECRET, r.headers, r.body);
    }
    if (Webhook) {
      const wh = new Webhook(SECRET);
      for (const r of rec.requests) wh.verify(r.body.toString(), r.headers);
    } else {
      t.diagnostic('standardwebhooks npm package not installed: checked with node:crypto only');
    }
    e.close();
  } finally { await rec.close(); }
});

function runChild(t, code, rec) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'whnode-'));
  const file = path.join(dir, 'child.js');
  fs.writeFileSync(file, code);
  const r = spawnSync(process.execPath, [file, rec.url, path.join(__dirname, '..')],
    { encoding: 'utf8', timeout: 20000 });
  fs.rmSync(dir, { recursive: true });
  return r;
}

test('a script delivers 1000 events verified by standardwebhooks and exits by itself after await flush() and close()',
  { skip: loopSkip }, async (t) => {
    const { spawn } = require('node:child_process');
    const recv = spawn(process.execPath, [path.join(__dirname, 'sw_receiver.js'), SECRET, '1000'],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    recv.stdout.setEncoding('utf8');
    const firstLine = await new Promise((resolve) => {
      recv.stdout.on('data', (d) => { buf += d; if (buf.includes('\n')) resolve(buf.split('\n')[0]); });
      recv.on('exit', () => resolve(buf.split('\n')[0]));
    });
    if (!firstLine.startsWith('listening')) return t.skip('standardwebhooks npm package not installed');
    const rec = { url: `http://${firstLine.split(' ')[1]}/hook` };
    const summary = new Promise((resolve) => recv.on('exit', () => resolve(JSON.parse(buf.trim().split('\n').pop()))));
    try {
      const r = runChild(t, `
        const { Engine } = require(process.argv[3]);
        const e = new Engine();
        e.addEndpoint(process.argv[2], { secret: '${SECRET}', max_in_flight: 16 });
        const ids = new Set();
        e.on('outcome', (o) => { if (o.kind === 'delivered') ids.add(o.id); });
        for (let i = 0; i < 1000; i++) e.emit('message.sent', { i }, { channel: 'room-1' });
        e.flush(20000).then((ok) => { e.close(); console.log(JSON.stringify({ ok, d: ids.size })); });
      `, rec);
      assert.strictEqual(r.error, undefined, 'the child did not exit by itself');
      assert.strictEqual(r.status, 0, r.stderr);
      assert.deepStrictEqual(JSON.parse(r.stdout), { ok: true, d: 1000 });
      assert.deepStrictEqual(await summary, { received: 1000, verified: 1000, bad: 0, distinct_ids: 1000 });
    } finally { if (recv.exitCode === null) recv.kill(); }
  });

test('an outcome listener that throws surfaces as uncaughtException', { skip: loopSkip }, async (t) => {
  const rec = exampleReceiver(1);
  if (!rec) return t.skip('build/bin/receiver not built');
  await rec.start();
  try {
    const r = runChild(t, `
      const { Engine } = require(process.argv[3]);
      const e = new Engine();
      e.addEndpoint(process.argv[2]);
      process.on('uncaughtException', (err) => { console.log('caught:' + err.message); e.close(); });
      e.on('outcome', () => { throw new Error('listener boom'); });
      e.emit('t', '{}');
    `, rec);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /caught:listener boom/);
  } finally { rec.stop(); }
});

test('examples/node/express-free-server.mjs delivers every event and exits by itself', async (t) => {
  const rec = exampleReceiver(20);
  if (!rec) return t.skip('build/bin/receiver not built');
  await rec.start();
  try {
    const ex = path.join(__dirname, '..', '..', '..', 'examples', 'node', 'express-free-server.mjs');
    const r = spawnSync(process.execPath, [ex, '--webhook', rec.url, '--secret', SECRET, '--selftest', '10'],
      { encoding: 'utf8', timeout: 30000 });
    assert.strictEqual(r.error, undefined, 'the example did not exit by itself');
    assert.strictEqual(r.status, 0, r.stderr);
    assert.deepStrictEqual(JSON.parse(r.stdout), { drained: true, events: 20, delivered: 20, retry: 0, dead: 0 });
    const s = await rec.summary();
    assert.strictEqual(s.verified, 20);
    assert.strictEqual(s.distinct_ids, 20);
  } finally { rec.stop(); }
});
