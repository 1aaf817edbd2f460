// Starts Express Gateway from the bench's on-demand install (EG_DIR) with the config folder given (EG_CONFIG).
const path = require('node:path');
require(path.join(process.env.EG_DIR, 'node_modules', 'express-gateway'))()
  .load(process.env.EG_CONFIG)
  .run();
