/** Entry point: `node dist/examples/demo/inventory.js --port P`. */
import { parseServiceArgs, runMain, serve } from './http-kit.js';
import { createInventoryServer } from './inventory-app.js';

runMain('inventory', async () => {
  const args = parseServiceArgs('inventory', process.argv.slice(2));
  await serve('inventory', createInventoryServer(), args, 'http');
});
