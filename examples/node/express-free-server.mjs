#!/usr/bin/env node
// express-free-server — a plain node:http API that emits a signed webhook per
// change, delivered by libwebhook on Node's own event loop (no timer polls).
//
//   make node
//   node examples/node/express-free-server.mjs --port 8080 \
//        --webhook http://127.0.0.1:9000/hook --secret whsec_...
//   curl -XPOST localhost:8080/orders -d '{"item":"book","qty":2}'
//   curl -XPOST localhost:8080/orders/1/ship
//   curl localhost:8080/stats
//
// Events: order.created, order.shipped (channel "orders").  Ctrl-C flushes
// what is queued, closes the engine and lets the process end by itself.
// --selftest N creates and ships N orders through its own API, awaits
// engine.flush(), prints one JSON line and exits by itself (nothing left on
// the loop: the test suite checks that).
import http from 'node:http';
import { parseArgs } from 'node:util';
import lib from '../../bindings/node/index.js';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '8080' },
    webhook: { type: 'string' },
    secret: { type: 'string' },
    selftest: { type: 'string' },
  },
});
if (!args.webhook) {
  console.error('usage: express-free-server.mjs --webhook URL [--secret whsec_...] [--port N] [--selftest N]');
  process.exit(2);
}

const engine = new lib.Engine();
engine.addEndpoint(args.webhook, { secret: args.secret, max_in_flight: 32 });
const counts = { delivered: 0, retry: 0, dead: 0 };
engine.on('outcome', (o) => {
  counts[o.kind]++;
  if (o.kind === 'dead') console.error(`webhook ${o.id} dead: ${o.error} ${o.errorMessage}`);
});

const orders = new Map();
let nextId = 1;

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      try { resolve(chunks.length ? JSON.parse(Buffer.concat(chunks)) : {}); } catch (e) { reject(e); }
    });
  });
}

function send(res, status, obj) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(obj));
}

const server = http.createServer(async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/orders') {
      const body = await readJson(req);
      const order = { id: nextId++, item: String(body.item ?? ''), qty: Number(body.qty ?? 1), state: 'new' };
      orders.set(order.id, order);
      engine.emit('order.created', order, { channel: 'orders' });
      return send(res, 201, order);
    }
    const m = req.method === 'POST' && req.url.match(/^\/orders\/(\d+)\/ship$/);
    if (m) {
      const order = orders.get(Number(m[1]));
      if (!order) return send(res, 404, { error: 'no such order' });
      order.state = 'shipped';
      engine.emit('order.shipped', order, { channel: 'orders' });
      return send(res, 200, order);
    }
    if (req.method === 'GET' && req.url === '/stats') return send(res, 200, { ...engine.stats(), counts });
    return send(res, 404, { error: 'not found' });
  } catch (e) {
    return send(res, 400, { error: e.message });
  }
});

async function shutdown() {
  server.close();
  const drained = await engine.flush(10000);
  engine.close();
  return drained;
}

server.listen(args.selftest ? 0 : Number(args.port), '127.0.0.1', async () => {
  const base = `http://127.0.0.1:${server.address().port}`;
  if (!args.selftest) {
    console.log(`listening ${base}`);
    process.once('SIGINT', () => shutdown());
    return;
  }
  const n = Number(args.selftest);
  const agent = new http.Agent({ keepAlive: false });
  const call = (method, path, body) => new Promise((resolve, reject) => {
    const r = http.request(`${base}${path}`, { method, agent }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    r.on('error', reject);
    r.end(body ? JSON.stringify(body) : undefined);
  });
  for (let i = 0; i < n; i++) await call('POST', '/orders', { item: `item-${i}`, qty: i + 1 });
  for (let i = 1; i <= n; i++) await call('POST', `/orders/${i}/ship`);
  agent.destroy();
  const drained = await shutdown();
  console.log(JSON.stringify({ drained, events: 2 * n, ...counts }));
  // nothing else: the process ends by itself once the loop is empty
});
