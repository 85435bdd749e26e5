// The printed result. Every figure is a ratio or a difference measured in this one run, on
// this one machine, with the same helpers for every tool: the meshcc section keeps the lines
// earlier runs printed (so they stay comparable), each rival gets the same lines where its
// design has the same parts, and a last table puts the four builds side by side.
import { FAR_LINK } from '../../test/helpers/link-shape.js';
import { printStats } from './agent-stats.js';
import { bytes, CORES, pct, say, secs } from './common.js';
import type { BenchContext } from './context.js';
import type { MeshOutcome } from './meshcc.js';
import type { BuildResult } from './make.js';
import type { GzipE } from './preprocessed.js';
import type { RivalOutcome } from './rival.js';

export interface PlainOutcome {
  run: BuildResult;
  machine: { busy: number; steal: number };
  objects: number;
}

/** Wall time the build's busy CPU, less the given daemons' CPU, would take at the plain build's use of the cores. */
function wallWithoutDaemons(busy: number, daemons: number, plain: PlainOutcome): string {
  const plainUse = plain.machine.busy / ((CORES * plain.run.wallMs) / 1000);
  return ((busy - daemons) / plainUse / CORES / (plain.run.wallMs / 1000)).toFixed(2);
}

const coreSeconds = (run: BuildResult) => (CORES * run.wallMs) / 1000;

export function printMeshReport(ctx: BenchContext, plain: PlainOutcome, mesh: MeshOutcome, gz: GzipE | undefined, header: string, far: boolean): void {
  const plainCpu = plain.run.cpuS;
  const clientCpu = mesh.run.cpuS + mesh.agentCpuS;
  say('');
  say(`== ${ctx.name}: ${plain.objects} objects; plain make -j${CORES}, mesh make -j${ctx.jobs} (client h0 without slots, peer h1 with 2 slots${far ? `, ${2 * FAR_LINK.delayMs} ms away at ${FAR_LINK.rateMbit} Mbit/s` : ''}, one ${CORES}-core machine)`);
  say(`plain build            ${secs(plain.run.wallMs)} wall, ${plainCpu.toFixed(1)} s CPU`);
  say(`mesh build             ${secs(mesh.run.wallMs)} wall: mesh/plain ${(mesh.run.wallMs / plain.run.wallMs).toFixed(2)} (target <= 1.10)`);
  say(
    `client-side CPU        ${clientCpu.toFixed(1)} s = ${pct(clientCpu, plainCpu)} of the plain build's (target <= 35 %)` +
      `: make and below ${mesh.run.cpuS.toFixed(1)} s, client agent ${mesh.agentCpuS.toFixed(1)} s`,
  );
  {
    // Where the machine's CPU went: on one machine every agent cycle is a cycle no compile got.
    const m = mesh.machine;
    const peerAgent = m.peerOwn;
    const peerJobs = m.peerTree - peerAgent - m.peerCompiles;
    const other = m.busy - mesh.run.cpuS - mesh.agentCpuS - m.peerTree + m.peerCompiles;
    const agents = peerAgent + mesh.agentCpuS;
    say(
      `machine CPU, mesh build ${m.busy.toFixed(1)} s busy, ${m.steal.toFixed(1)} s stolen by the hypervisor, of ${coreSeconds(mesh.run).toFixed(1)} s (${pct(m.busy, coreSeconds(mesh.run))} busy): ` +
        `peer's helpers and sandboxes ${peerJobs.toFixed(1)} s, peer agent ${peerAgent.toFixed(1)} s, client agent ${m.clientOwn.toFixed(1)} s` +
        ` (+ its children ${(mesh.agentCpuS - m.clientOwn).toFixed(1)} s), make tree ${mesh.run.cpuS.toFixed(1)} s, rest ${other.toFixed(1)} s (the compiles, kernel threads)`,
    );
    // Per job, by thread: what the event loops carry and what their workers (walk, job roots) and helpers add.
    const perJob = (s: number) => `${((s * 1000) / Math.max(1, mesh.stats.counts.remote ?? 0)).toFixed(1)} ms`;
    say(
      `  per remote job: client agent ${perJob(m.clientOwn)} (main thread ${perJob(m.clientMain)}, other threads ${perJob(m.clientOwn - m.clientMain)}), ` +
        `peer agent ${perJob(peerAgent)} (main thread ${perJob(m.peerMain)}, other threads ${perJob(peerAgent - m.peerMain)}), peer's helpers and sandboxes ${perJob(peerJobs)}`,
    );
    say(`  the peer's 2 slots compiled ${pct(mesh.peerSlotMs, 2 * mesh.run.wallMs)} of the build's wall time (a slot idles while its next job's offer, files and root are on their way)`);
    say(
      `  plain build: ${plain.machine.busy.toFixed(1)} s busy, ${plain.machine.steal.toFixed(1)} s stolen (${pct(plain.machine.busy, coreSeconds(plain.run))} busy); ` +
        `the mesh build's busy CPU without both agents' ${agents.toFixed(1)} s, at the plain build's use of the cores, would take ${wallWithoutDaemons(m.busy, agents, plain)} × the plain wall time`,
    );
  }
  say(`objects identical      ${mesh.objects.identical} identical, ${mesh.objects.differing.length} differing`);
  for (const d of mesh.objects.differing.slice(0, 50)) say(`  differs: ${d}`);
  if (mesh.objects.differing.length > 50) say(`  … and ${mesh.objects.differing.length - 50} more`);
  const deps = mesh.deps;
  say(`dependency files (.d)  ${deps.identical} identical, ${deps.differing.length} differing${deps.differing.length ? `: ${deps.differing.slice(0, 10).join(', ')}` : ''}`);
  const first = mesh.stats;
  printStats(first, mesh.peerNames);
  const remote = first.counts.remote;
  const perRemote = first.bytesSent !== undefined && remote ? first.bytesSent / remote : undefined;
  say(`bytes sent per remote job      ${bytes(perRemote === undefined ? undefined : Math.round(perRemote))}`);
  const received = first.bytesReceived !== undefined && remote ? first.bytesReceived / remote : undefined;
  say(`bytes received per remote job  ${bytes(received === undefined ? undefined : Math.round(received))} (the outputs)`);
  if (gz) {
    const perJob = gz.gzipBytes / Math.max(1, gz.jobs);
    say(`gzip'd -E per job (icecream)   ${bytes(Math.round(perJob))} (total ${bytes(gz.gzipBytes)} for ${gz.jobs} compiles; ${bytes(gz.rawBytes)} before gzip${gz.failed ? `; ${gz.failed} compiles whose -E failed left out` : ''})`);
    const ratio = perRemote === undefined ? 'n/a' : `${(perRemote / perJob).toFixed(3)} = 1/${(perJob / perRemote).toFixed(0)}`;
    say(`bytes sent / gzip'd -E         ${ratio} (target <= 1/20)`);
  } else {
    say(`gzip'd -E per job (icecream)   skipped (--no-gzip-e)`);
  }
  say(`h0's eth0 during the build     sent ${bytes(mesh.wire.sent)}, received ${bytes(mesh.wire.received)} (all traffic, as the kernel counts it)`);
  if (mesh.peerServed && typeof mesh.peerServed === 'object') say(`peer h1 served (all builds)    ${JSON.stringify(mesh.peerServed)}`);
  say('');
  const inc = mesh.incremental;
  say(
    `incremental: ${header} (${inc.headerSize} bytes${gz ? `, included by ${gz.includingHeader} of ${gz.jobs} units` : ''}) + one comment line: ` +
      `${inc.rebuilt} objects rebuilt in ${secs(inc.run.wallMs)} wall, client side ${inc.clientCpuS.toFixed(1)} s CPU`,
  );
  printStats(inc.stats, mesh.peerNames);
}

export function printRivalReport(plain: PlainOutcome, mesh: MeshOutcome | undefined, rival: RivalOutcome, gz: GzipE | undefined): void {
  const { tool, measure: r } = rival;
  const plainCpu = plain.run.cpuS;
  const clientCpu = r.run.cpuS + r.clientDaemonCpuS;
  const m = r.machine;
  const helpers = m.helpers.reduce((sum, h) => sum + h.cpuS, 0);
  const daemons = m.serverOwn + r.clientDaemonCpuS + helpers;
  const other = m.busy - r.run.cpuS - r.clientDaemonCpuS - m.serverOwn - m.serverReaped - helpers;
  const pad = (s: string) => s.padEnd(22);
  say('');
  say(`-- ${tool}: the same configured tree at the same path, the same namespaces and make -j in h0`);
  for (const line of rival.setup) say(`  ${line}`);
  say(`${pad(`${tool} build`)} ${secs(r.run.wallMs)} wall: ${tool}/plain ${(r.run.wallMs / plain.run.wallMs).toFixed(2)}${mesh ? ` (mesh/plain ${(mesh.run.wallMs / plain.run.wallMs).toFixed(2)})` : ''}`);
  say(
    `${pad('client-side CPU')} ${clientCpu.toFixed(1)} s = ${pct(clientCpu, plainCpu)} of the plain build's: make and below ${r.run.cpuS.toFixed(1)} s` +
      ` (the ${tool === 'distcc' ? 'distcc' : 'icecc'} clients, h0's preprocessing, links)` +
      (rival.tool === 'icecream' ? `, ${rival.clientDaemonNote} ${r.clientDaemonCpuS.toFixed(1)} s` : `; ${rival.clientDaemonNote}`),
  );
  say(
    `machine CPU, ${tool} build ${m.busy.toFixed(1)} s busy, ${m.steal.toFixed(1)} s stolen by the hypervisor, of ${coreSeconds(r.run).toFixed(1)} s (${pct(m.busy, coreSeconds(r.run))} busy): ` +
      `h1's compiles (reaped by the daemon) ${m.serverReaped.toFixed(1)} s, h1's daemon ${m.serverOwn.toFixed(1)} s` +
      `${r.clientDaemonCpuS || rival.tool === 'icecream' ? `, h0's daemon ${r.clientDaemonCpuS.toFixed(1)} s` : ''}` +
      `${m.helpers.map((h) => `, ${h.label} ${h.cpuS.toFixed(1)} s`).join('')}, make tree ${r.run.cpuS.toFixed(1)} s, rest ${other.toFixed(1)} s (other processes on the machine, kernel threads)`,
  );
  say(`  the ${tool} build's busy CPU without its daemons' ${daemons.toFixed(1)} s, at the plain build's use of the cores, would take ${wallWithoutDaemons(m.busy, daemons, plain)} × the plain wall time`);
  const dbg = r.debugOnly;
  say(
    `${pad('objects identical')} ${r.objects.identical} identical, ${r.objects.differing.length} differing` +
      (dbg.checked ? `; ${dbg.identicalStripped} of ${dbg.checked} differing are identical once objcopy --strip-debug removed both sides' debug sections` : ''),
  );
  const first = dbg.first;
  if (first) {
    const attributes = [...first.attributes].map(([a, n]) => `${a} ×${n}`).join(', ');
    say(`  ${first.object} differs in ${first.sections.join(', ') || 'no section'}${attributes ? `; in its DWARF info: ${attributes}` : ''}`);
    if (first.producers) say(`  compiler recorded there (DW_AT_producer): plain '${first.producers.plain}', ${tool} '${first.producers.other}'`);
  }
  if (r.objects.differing.length) {
    say(`  (${tool} compiles preprocessed text in h1, so with -g an object may differ from the plain build's: expected; meshcc's must be identical)`);
    for (const d of r.objects.differing.slice(0, 5)) say(`  differs: ${d}`);
    if (r.objects.differing.length > 5) say(`  … and ${r.objects.differing.length - 5} more`);
  }
  const deps = r.deps;
  say(`${pad('dependency files (.d)')} ${deps.identical} identical, ${deps.differing.length} differing${deps.differing.length ? `: ${deps.differing.slice(0, 10).join(', ')}` : ''}`);
  say(`${pad('compiled in h1')} ${rival.remote}; fell back to h0: ${rival.fallbacks}`);
  for (const line of rival.countLines) say(`  ${line}`);
  const perRemote = rival.remote ? Math.round(r.wire.sent / rival.remote) : undefined;
  const gzPerJob = gz && gz.jobs ? gz.gzipBytes / gz.jobs : undefined;
  const vsGzipE = perRemote !== undefined && gzPerJob ? `, ${(perRemote / gzPerJob).toFixed(2)} × the gzip'd -E per job` : '';
  say(`${pad("h0's eth0, the build")} sent ${bytes(r.wire.sent)} (${bytes(perRemote)} per compile in h1${vsGzipE}), received ${bytes(r.wire.received)}`);
}

export function printSideBySide(ctx: BenchContext, plain: PlainOutcome, mesh: MeshOutcome | undefined, rivals: RivalOutcome[], far: boolean): void {
  const plainCpu = plain.run.cpuS;
  type Row = { tool: string; run: BuildResult; clientCpu: number; busy: number; steal: number; others?: number; objects: string; deps: string; remote: string; fallback: string; sent: string };
  const rows: Row[] = [
    { tool: 'plain', run: plain.run, clientCpu: plainCpu, busy: plain.machine.busy, steal: plain.machine.steal, others: plain.machine.busy - plainCpu, objects: `${plain.objects} (itself)`, deps: '', remote: '', fallback: '', sent: '' },
  ];
  if (mesh) {
    rows.push({
      tool: 'meshcc',
      run: mesh.run,
      clientCpu: mesh.run.cpuS + mesh.agentCpuS,
      busy: mesh.machine.busy,
      steal: mesh.machine.steal,
      objects: `${mesh.objects.identical}/${mesh.objects.identical + mesh.objects.differing.length}`,
      deps: `${mesh.deps.identical}/${mesh.deps.identical + mesh.deps.differing.length}`,
      remote: String(mesh.stats.counts.remote ?? 'n/a'),
      fallback: String(mesh.stats.counts.fallback ?? 'n/a'),
      sent: bytes(mesh.wire.sent),
    });
  }
  for (const r of rivals) {
    const m = r.measure;
    rows.push({
      tool: r.tool,
      run: m.run,
      clientCpu: m.run.cpuS + m.clientDaemonCpuS,
      busy: m.machine.busy,
      steal: m.machine.steal,
      others: m.machine.busy - m.run.cpuS - m.clientDaemonCpuS - m.machine.serverOwn - m.machine.serverReaped - m.machine.helpers.reduce((sum, h) => sum + h.cpuS, 0),
      objects:
        `${m.objects.identical}/${m.objects.identical + m.objects.differing.length}` +
        (m.debugOnly.checked ? ` (${m.objects.identical + m.debugOnly.identicalStripped} without debug info)` : ''),
      deps: `${m.deps.identical}/${m.deps.identical + m.deps.differing.length}`,
      remote: String(r.remote),
      fallback: String(r.fallbacks),
      sent: bytes(m.wire.sent),
    });
  }
  const table = [
    ['build', 'wall', '/plain', 'client CPU', '% of plain', 'machine busy', "others' CPU", 'stolen', 'identical .o', 'identical .d', 'in h1', 'fallbacks', 'h0 sent'],
    ...rows.map((r) => [
      r.tool,
      secs(r.run.wallMs),
      (r.run.wallMs / plain.run.wallMs).toFixed(2),
      `${r.clientCpu.toFixed(1)} s`,
      pct(r.clientCpu, plainCpu),
      pct(r.busy, coreSeconds(r.run)),
      r.others === undefined ? 'n/a' : `${r.others.toFixed(1)} s`,
      `${r.steal.toFixed(1)} s`,
      r.objects,
      r.deps,
      r.remote,
      r.fallback,
      r.sent,
    ]),
  ];
  const widths = table[0]!.map((_, col) => Math.max(...table.map((row) => row[col]!.length)));
  say('');
  say(`== side by side: ${ctx.name}, ${ctx.compileUnits} compile units; plain make -j${CORES}; the others make -j${ctx.jobs} in h0, compiles in h1 (2 slots${far ? `, ${2 * FAR_LINK.delayMs} ms away at ${FAR_LINK.rateMbit} Mbit/s` : ''}), one after the other in this run`);
  for (const row of table) say(`  ${row.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!))).join('  ')}`);
  say(`  client CPU: make and everything under it (bash's times) + the client-side daemon's process tree (/proc): meshcc's client agent, icecream's iceccd in h0; plain distcc has no client-side daemon`);
  say(
    `  others' CPU: the machine's busy time none of the build's processes account for (other work on this shared machine, kernel threads): what the wall ratios are at the mercy of;` +
      ` n/a for meshcc, whose peer runs the compiles in bubblewrap PID namespaces /proc does not attribute to it`,
  );
  say(`  identical: byte for byte against the plain build's (without debug info: both objects through objcopy --strip-debug); fallbacks: compiles that went local after trying to go to h1 (meshcc: its counts.fallback; distcc/icecream: client warnings + scheduler hand-backs)`);
}
