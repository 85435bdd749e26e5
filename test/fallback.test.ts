// A job route failure is never a build failure: inputs the scan cannot see (an assembler's
// .incbin) make the sandboxed run fail recognisably, and the client compiles locally.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../node/cli/query.js';
import { MASQUERADE, startAgentProcess, type AgentProcess } from './helpers/agent.js';
import { tempDir } from './helpers/tmp.js';

let agent: AgentProcess;
beforeAll(async () => {
  agent = await startAgentProcess({ MESHCC_LOCAL_SLOTS: '0' });
});
afterAll(() => agent.stop());

async function routes() {
  const reply = await query(agent.socketPath, { t: 'stats', v: 1 });
  return (reply.stats as { routes: Record<string, { jobs: number; byReason: Record<string, number> }> }).routes;
}

describe('fallback', () => {
  for (const cc of ['gcc', 'clang']) {
    it(`${cc}: an .incbin the scan cannot list falls back to a local compile with the same object`, async () => {
      const dir = tempDir();
      writeFileSync(path.join(dir, 'blob.bin'), Buffer.from('meshcc blob\n'));
      writeFileSync(
        path.join(dir, 'embed.c'),
        '__asm__(".section .rodata\\n.global blob\\nblob:\\n.incbin \\"blob.bin\\"\\n.previous");\nint f(void) { return 1; }\n',
      );
      const args = ['-O2', '-c', 'embed.c', '-o', 'embed.o'];
      expect(spawnSync(cc, args, { cwd: dir }).status).toBe(0);
      const plain = readFileSync(path.join(dir, 'embed.o'));
      const before = (await routes()).fallback!.byReason['missing-input'] ?? 0;
      const meshed = spawnSync(cc, args, {
        cwd: dir,
        env: { ...process.env, MESHCC_HOME: agent.home, PATH: `${MASQUERADE}:${process.env.PATH}` },
        encoding: 'utf8',
      });
      expect(meshed.stderr).toBe('');
      expect(meshed.status).toBe(0);
      expect(readFileSync(path.join(dir, 'embed.o')).equals(plain)).toBe(true);
      expect((await routes()).fallback!.byReason['missing-input']).toBe(before + 1);
    });
  }

  it('a compile whose output directory does not exist fails exactly as gcc does', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'a.c'), 'int a;\n');
    const args = ['-c', 'a.c', '-o', 'missing/a.o'];
    const plain = spawnSync('gcc', args, { cwd: dir, encoding: 'utf8' });
    const meshed = spawnSync('gcc', args, {
      cwd: dir,
      env: { ...process.env, MESHCC_HOME: agent.home, PATH: `${MASQUERADE}:${process.env.PATH}` },
      encoding: 'utf8',
    });
    expect(meshed.status).toBe(plain.status);
    expect(meshed.stderr).toBe(plain.stderr);
  });
});
