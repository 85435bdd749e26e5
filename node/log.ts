// One pino logger for the agent: JSON lines by default, readable with --pretty (or MESHCC_LOG_PRETTY=1).
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(options: { pretty?: boolean; level?: string } = {}): Logger {
  const level = options.level ?? process.env.MESHCC_LOG_LEVEL ?? 'info';
  const pretty = options.pretty ?? process.env.MESHCC_LOG_PRETTY === '1';
  if (pretty) {
    return pino({
      level,
      transport: { target: 'pino-pretty', options: { colorize: process.stderr.isTTY, destination: 2 } },
    });
  }
  return pino({ level }, pino.destination(2));
}
