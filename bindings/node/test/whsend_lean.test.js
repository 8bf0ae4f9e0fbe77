'use strict';
// whsend end to end over the lean transport ("transport": "lean"): 20,000
// signed events at 32 in flight to a node:http receiver that checks every
// request with the standardwebhooks npm package (sw_receiver.js).  Needs
// only build/bin/whsend; skipped when the package is not installed.
const test = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { SECRET, BIN } = require('./helpers.js');

const N = 20000;

function startReceiver(expect) {
  const recv = spawn(process.execPath, [path.join(__dirname, 'sw_receiver.js'), SECRET, String(expect)],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  recv.stdout.setEncoding('utf8');
  const first = new Promise((resolve) => {
    recv.stdout.on('data', (d) => { buf += d; if (buf.includes('\n')) resolve(buf.split('\n')[0]); });
    recv.on('exit', () => resolve(buf.split('\n')[0]));
  });
  const summary = new Promise((resolve) => recv.on('exit', () => {
    const last = buf.trim().split('\n').pop();
    try { resolve(JSON.parse(last)); } catch { resolve({ raw: buf }); }
  }));
  return { recv, first, summary };
}

function run(exe, args, timeoutMs) {
  return new Promise((resolve) => {
    const p = spawn(exe, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = ''; let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal, out, err }); });
  });
}

test(`whsend with "transport": "lean" delivers ${N} signed events at 32 in flight, every one verified by standardwebhooks`,
  async (t) => {
    const whsend = path.join(BIN, 'whsend');
    if (!fs.existsSync(whsend)) return t.skip('build/bin/whsend not built');
    const { recv, first, summary } = startReceiver(N);
    const line = await first;
    if (!line.startsWith('listening')) return t.skip('standardwebhooks npm package not installed');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'whsend-lean-'));
    try {
      const url = `http://${line.split(' ')[1]}/hook`;
      const cfg = path.join(dir, 'whsend.json');
      fs.writeFileSync(cfg, JSON.stringify({
        transport: 'lean',
        endpoints: [{ id: 'sw', url, secret: SECRET, max_in_flight: 32 }],
      }));
      const events = path.join(dir, 'events.ndjson');
      let text = '';
      for (let i = 0; i < N; i++)
        text += JSON.stringify({ event: 'message.created', channel: `room-${i % 7}`, data: { i, text: 'hello' } }) + '\n';
      fs.writeFileSync(events, text);
      const r = await run(whsend, ['-q', '-c', cfg, events], 120000);
      assert.strictEqual(r.signal, null, `whsend was killed: ${r.err}`);
      assert.strictEqual(r.code, 0, r.err);
      const s = JSON.parse(r.out.trim().split('\n').pop());
      assert.strictEqual(s.emitted, N);
      assert.strictEqual(s.delivered, N);
      assert.strictEqual(s.dead, 0);
      assert.strictEqual(s.rejected, 0);
      assert.strictEqual(s.requests, N); // one attempt each: nothing re-sent
      assert.deepStrictEqual(await summary, { received: N, verified: N, bad: 0, distinct_ids: N });
    } finally {
      if (recv.exitCode === null) recv.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
