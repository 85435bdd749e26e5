// The `meshcc` command line. `meshcc cc …` skips option parsing: its arguments are a compiler's.
import { MeshccError } from '../protocol/errors.js';

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'cc') {
    const { compileViaAgent } = await import('./cli/cc.js');
    if (argv.length < 2) throw new MeshccError('usage', 'usage: meshcc cc COMPILER [ARGS…]');
    return compileViaAgent(argv.slice(1));
  }
  const { buildProgram } = await import('./cli/program.js');
  let exitCode = 0;
  await buildProgram((code) => (exitCode = code)).parseAsync(argv, { from: 'user' });
  return exitCode;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error & { code?: string; exitCode?: number }) => {
    // commander has already printed its own one-line error (or the help) for these.
    if (err.code?.startsWith('commander.')) {
      process.exitCode = err.exitCode ?? 64;
      return;
    }
    // A clone whose node_modules went away, or an installation cut short.
    const hint = err.code === 'ERR_MODULE_NOT_FOUND' ? " (meshcc's dependencies are missing: run 'npm ci' in a clone, or install meshcc again)" : '';
    const code = err instanceof MeshccError && err.code === 'usage' ? 64 : 1;
    // Exit once the line is out: an agent that failed half-way through its start (a home it
    // cannot write, say) may hold sockets and timers that would keep the process alive.
    process.stderr.write(`meshcc: ${err.message.split('\n')[0]}${hint}\n`, () => process.exit(code));
  },
);
