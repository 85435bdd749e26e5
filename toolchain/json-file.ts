// A JSON file written atomically (temp file, then rename), one write after another: the
// caches of identified and packed toolchains, and the toolchain cache's index.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

export class AtomicJsonFile {
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: string,
    private readonly onError: (err: Error) => void,
  ) {}

  /** Writes the value after any write still under way; a failure goes to onError. */
  save(value: unknown): Promise<void> {
    const data = JSON.stringify(value);
    this.chain = this.chain.then(async () => {
      const tmp = `${this.file}.${process.pid}.tmp`;
      try {
        await mkdir(path.dirname(this.file), { recursive: true });
        await writeFile(tmp, data);
        await rename(tmp, this.file);
      } catch (err) {
        this.onError(err as Error);
      }
    });
    return this.chain;
  }

  /** Resolves once every write asked for so far is done. */
  settled(): Promise<void> {
    return this.chain;
  }
}
