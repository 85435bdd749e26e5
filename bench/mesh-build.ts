// bench/mesh-build: the entry point stays at this path so that `node dist/bench/mesh-build.js`
// and bench/wire-bytes (which imports it) keep working; the benchmark itself is in
// bench/mesh-build/ (main.ts describes it).
import './mesh-build/main.js';
