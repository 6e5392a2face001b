/**
 * Entry point: `node dist/examples/demo/orders.js --port P [--variant slow,error|all]`.
 * Dependencies come from INVENTORY_URL and PAYMENTS_URL; HTTPS trust from NODE_EXTRA_CA_CERTS.
 */
import { downstream } from './downstream.js';
import { parseServiceArgs, runMain, serve } from './http-kit.js';
import { createOrdersServer } from './orders-app.js';
import { parseVariants, variantConfig } from './variants.js';

runMain('orders', async () => {
  const args = parseServiceArgs('orders', process.argv.slice(2));
  const variant = variantConfig(parseVariants(args.variant));
  const inventory = downstream('INVENTORY_URL', process.env.INVENTORY_URL);
  const payments = downstream('PAYMENTS_URL', process.env.PAYMENTS_URL);
  const server = createOrdersServer({ inventory, payments, variant });
  await serve('orders', server, args, 'http', () => {
    inventory.agent.destroy();
    payments.agent.destroy();
  });
});
