import type { Logger } from '../contracts/context.js';
import { redact, redactDeep } from '../errors/redact.js';

/** A logger that drops everything. @public */
export const noopLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

type LoggerLike = {
  debug?: (...args: any[]) => void;
  info?: (...args: any[]) => void;
  warn?: (...args: any[]) => void;
  error?: (...args: any[]) => void;
  child?: unknown;
};

/**
 * Adapt a console- or pino-like logger; every message and field passes through the secret scrubber.
 * Pino-style loggers (with `child`) get `(fields, message)`, console-style ones `(message, fields)`.
 * @public
 */
export function toLogger(target: LoggerLike | undefined | null): Logger {
  if (!target) return noopLogger;
  const pinoStyle = typeof target.child === 'function';
  const call = (level: keyof Logger) => (message: string, fields?: Record<string, unknown>) => {
    const fn = target[level] ?? target.info;
    if (!fn) return;
    const msg = redact(message);
    if (!fields) return fn.call(target, msg);
    const f = redactDeep(fields);
    if (pinoStyle) fn.call(target, f, msg);
    else fn.call(target, msg, f);
  };
  return { debug: call('debug'), info: call('info'), warn: call('warn'), error: call('error') };
}
