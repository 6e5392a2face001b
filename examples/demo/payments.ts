/** Entry point: `node dist/examples/demo/payments.js --port P --cert server.pem --key server.key`. */
import { readFileSync } from 'node:fs';
import { parseServiceArgs, runMain, serve } from './http-kit.js';
import { createPaymentsServer } from './payments-app.js';

runMain('payments', async () => {
  const args = parseServiceArgs('payments', process.argv.slice(2));
  if (!args.cert || !args.key) throw new Error('--cert and --key (PEM files) are required');
  const server = createPaymentsServer({ cert: readFileSync(args.cert), key: readFileSync(args.key) });
  await serve('payments', server, args, 'https');
});
