'use strict';
// A receiver that verifies every request with the standardwebhooks npm
// package (test/node_modules), for the tests of both bindings:
//   node sw_receiver.js SECRET EXPECT
// prints "listening 127.0.0.1:PORT", then, once EXPECT requests arrived (or
// on SIGTERM), one JSON line {"received","verified","bad","distinct_ids"}
// and exits.  Exits 77 when the package is not installed.
const http = require('node:http');
const path = require('node:path');
let Webhook;
try {
  ({ Webhook } = require(path.join(__dirname, 'node_modules', 'standardwebhooks')));
} catch {
  console.log('standardwebhooks not installed');
  process.exit(77);
}
const [secret, expect] = [process.argv[2], Number(process.argv[3])];
const wh = new Webhook(secret);
const ids = new Set();
let received = 0; let verified = 0; let bad = 0;
function done() {
  console.log(JSON.stringify({ received, verified, bad, distinct_ids: ids.size }));
  process.exit(0);
}
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    received++;
    try {
      wh.verify(Buffer.concat(chunks).toString(), req.headers);
      verified++;
      ids.add(req.headers['webhook-id']);
      res.statusCode = 204;
    } catch {
      bad++;
      res.statusCode = 401;
    }
    res.end();
    if (received >= expect) setTimeout(done, 100);
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => console.log(`listening 127.0.0.1:${server.address().port}`));
process.on('SIGTERM', done);
