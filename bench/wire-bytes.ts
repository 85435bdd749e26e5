// bench/wire-bytes: what crosses a home uplink. bench/mesh-build with the kernel's tinyconfig
// (Linux 6.1, ~460 units) built in h0 on one far peer (100 ms round trip, 20 Mbit/s: tc netem
// + tbf on both directions of its link): bytes sent per job cold, and again after one header
// is touched, next to each job's preprocessed source gzip'd (what icecream and distcc send).
//
//   node dist/bench/wire-bytes.js [any bench/mesh-build option, e.g. --project git, -j 16]
// Needs root (network namespaces); the kernel source comes from Debian (bench/fetch-project.sh).
process.env.MESHCC_BENCH_ARGS = ['--project', 'linux', '--far', ...process.argv.slice(2)].join(' ');
await import('./mesh-build.js');
