'use strict';
// Receivers for the tests: the example receiver (build/bin/receiver, its own
// process) and an in-process node:http one; both on 127.0.0.1, port from the OS.
const { spawn } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');
const fs = require('node:fs');
const crypto = require('node:crypto');

const BIN = process.env.WH_BIN || path.join(__dirname, '..', '..', '..', 'build', 'bin');
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

function exampleReceiver(expect, secret = SECRET) {
  const exe = path.join(BIN, 'receiver');
  if (!fs.existsSync(exe)) return null;
  const proc = spawn(exe, ['--port', '0', '--secret', secret, '--expect', String(expect), '--quiet'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const lines = [];
  let onLine = null;
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (d) => {
    out += d;
    let i;
    while ((i = out.indexOf('\n')) >= 0) {
      lines.push(out.slice(0, i));
      out = out.slice(i + 1);
      if (onLine) onLine();
    }
  });
  const nextLine = () => new Promise((resolve) => {
    const tryit = () => { if (lines.length) { onLine = null; resolve(lines.shift()); } };
    onLine = tryit;
    tryit();
  });
  return {
    proc,
    async start() {
      const l = await nextLine();
      if (!l.startsWith('listening 127.0.0.1:')) throw new Error(l);
      this.url = `http://127.0.0.1:${l.split(':')[1]}/hook`;
      return this;
    },
    async summary() { return JSON.parse(await nextLine()); },
    stop() { if (proc.exitCode === null) proc.kill(); },
  };
}

function standardOk(secret, h, body) {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const mac = crypto.createHmac('sha256', key)
    .update(`${h['webhook-id']}.${h['webhook-timestamp']}.`).update(body).digest('base64');
  return h['webhook-signature'].split(' ').includes(`v1,${mac}`);
}

function httpReceiver(onRequest) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const r = { path: req.url, headers: req.headers, body: Buffer.concat(chunks) };
      requests.push(r);
      res.statusCode = req.url.startsWith('/fail') ? 503 : 204;
      res.end();
      if (onRequest) onRequest(r, requests);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    resolve({ server, requests, url: `http://127.0.0.1:${server.address().port}/hook`,
      close: () => new Promise((r) => server.close(r)) });
  }));
}

module.exports = { exampleReceiver, httpReceiver, standardOk, SECRET, BIN };
