// `meshcc cc COMPILER ARGS…`: the client in Node, for tests and convenience. It behaves like
// the native client (node/client/): ask the agent, then run the compiler itself or print the
// agent's result; if the agent cannot help, run the compiler directly.
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { PROTOCOL_VERSION } from '../../protocol/messages.js';
import { socketPath } from '../config.js';
import { isMeshccClient, MASQUERADE_NAMES } from '../native-client.js';
import { openSession } from './query.js';

const ENV_NAMES = new Set([
  'PATH', 'PWD', 'LANG', 'LANGUAGE', 'TERM', 'NO_COLOR', 'CLICOLOR_FORCE', 'GCC_COLORS', 'GCC_URLS', 'TERM_URLS',
  'CPATH', 'C_INCLUDE_PATH', 'CPLUS_INCLUDE_PATH', 'OBJC_INCLUDE_PATH', 'OBJCPLUS_INCLUDE_PATH',
  'COMPILER_PATH', 'LIBRARY_PATH', 'GCC_EXEC_PREFIX', 'GCC_COMPARE_DEBUG', 'SOURCE_DATE_EPOCH',
  'DEPENDENCIES_OUTPUT', 'SUNPRO_DEPENDENCIES', 'TMPDIR', 'SDKROOT', 'MACOSX_DEPLOYMENT_TARGET',
  'CCC_OVERRIDE_OPTIONS', 'QA_OVERRIDE_GCC3_OPTIONS',
]);

export function compilerEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const subset: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && (ENV_NAMES.has(k) || k.startsWith('LC_') || k.startsWith('MESHCC_'))) subset[k] = v;
  }
  return subset;
}

/** PATH without our masquerade directories (any that holds a compiler name leading to meshcc). */
function cleanPath(pathVar: string): string {
  return pathVar
    .split(':')
    .filter((dir) => !MASQUERADE_NAMES.some((name) => isMeshccClient(path.join(dir || '.', name))))
    .join(':');
}

export function findCompiler(name: string, cwd: string, pathVar: string): string | undefined {
  if (name.includes('/')) return path.resolve(cwd, name);
  for (const dir of pathVar.split(':')) {
    const candidate = path.resolve(cwd, dir || '.', name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

function runCompiler(compiler: string, argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(compiler, argv.slice(1), { argv0: argv[0], stdio: 'inherit', env });
    child.on('error', () => resolve(127));
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + 15 : 1)));
  });
}

export async function compileViaAgent(argv: string[]): Promise<number> {
  const cwd = process.cwd();
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: cleanPath(process.env.PATH ?? '') };
  const compiler = findCompiler(argv[0]!, cwd, env.PATH ?? '');
  if (!compiler) {
    process.stderr.write(`meshcc: cannot find the real compiler '${argv[0]}' on PATH\n`);
    return 127;
  }
  if (env.MESHCC_DISABLE === '1') return runCompiler(compiler, argv, env);
  const umask = process.umask();
  const session = openSession(socketPath(env), {
    t: 'compile',
    v: PROTOCOL_VERSION,
    cwd,
    argv,
    compiler,
    env: compilerEnvironment(env),
    umask,
    tty: process.stderr.isTTY === true,
  });
  let reply: Record<string, unknown>;
  try {
    reply = await session.reply;
  } catch (err) {
    if (env.MESHCC_DEBUG === '1') process.stderr.write(`meshcc: ${(err as Error).message}\n`);
    return runCompiler(compiler, argv, env);
  }
  if (reply.t === 'run-local') {
    const exit = await runCompiler(compiler, argv, env);
    session.send({ t: 'done', exit });
    session.close();
    return exit;
  }
  session.close();
  if (reply.t === 'result' && typeof reply.exit === 'number') {
    process.stdout.write(reply.stdout as Uint8Array);
    process.stderr.write(reply.stderr as Uint8Array);
    return reply.exit;
  }
  if (env.MESHCC_DEBUG === '1') process.stderr.write(`meshcc: ${String(reply.message ?? reply.t)}\n`);
  return runCompiler(compiler, argv, env);
}
