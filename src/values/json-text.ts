import type { Value } from '../contracts/values.js';
import { JsonText } from './value.js';

export { JsonText };

/**
 * Whether every leaf of nested arrays is a `JsonText` or null, with at least one `JsonText`: a `json[]`/`jsonb[]`
 * value as a source read it, whose nested arrays are dimensions (not JSON arrays).
 * @internal
 */
export function jsonTextLeaves(values: Value[]): boolean {
  let seen = false;
  const walk = (vs: Value[]): boolean => {
    for (const v of vs) {
      if (v === null || v === undefined) continue;
      if (Array.isArray(v)) {
        if (!walk(v)) return false;
      } else if (v instanceof JsonText) seen = true;
      else return false;
    }
    return true;
  };
  return walk(values) && seen;
}
