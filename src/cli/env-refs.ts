import { IngestError } from '../errors/ingest-error.js';
import { registerSecret } from '../errors/redact.js';

const ENV_REF = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Replace every `${env:NAME}` inside the strings of `value` with the environment variable `NAME`, and register
 * each value with `registerSecret`, so it is masked in every error, log line and event.
 * A reference to an unset variable is an error listing every missing name and where it was used.
 * @throws IngestError `config_invalid` when a referenced variable is not set
 * @internal
 */
export function resolveEnvRefs<T>(value: T, env: NodeJS.ProcessEnv = process.env): T {
  const missing: string[] = [];
  const out = walk(value, '', env, missing);
  if (missing.length > 0) {
    throw new IngestError('config_invalid', `Pipeline file: unset environment variable(s): ${missing.join('; ')}`, {
      details: { issues: missing.map((m) => ({ path: m.split(' ')[0], message: m })) },
    });
  }
  return out as T;
}

function walk(value: unknown, path: string, env: NodeJS.ProcessEnv, missing: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (_m, name: string) => {
      const v = env[name];
      if (v === undefined) {
        missing.push(`${path || '(root)'} references \${env:${name}}, which is not set`);
        return '';
      }
      registerSecret(v);
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => walk(v, `${path}[${i}]`, env, missing));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      Object.defineProperty(out, k, {
        value: walk(v, path ? `${path}.${k}` : k, env, missing),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
  return value;
}
