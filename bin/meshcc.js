#!/usr/bin/env node
// Shipped entry: the compiled CLI (built by `npm install` / `npm run build`).
import '../dist/node/cli.js';
