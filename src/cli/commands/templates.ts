import type { EndpointRegistry } from '../../registry/endpoint-registry.js';
import { renderTable } from '../format.js';
import type { Reporter } from '../reporter.js';

/**
 * `nucleus-ingest templates`: every registered endpoint with its config as JSON Schema.
 * On a terminal, a table first (id, role, family, capabilities, title), then the JSON with `--json`.
 * @internal
 */
export function templatesCommand(
  registry: EndpointRegistry,
  reporter: Reporter,
  out: { write(s: string): unknown },
  tty: boolean,
): number {
  const templates = registry.templates();
  if (tty) {
    const rows = templates.map((t) => [t.id, t.role, t.family, t.capabilities.join(','), t.title]);
    out.write(
      `${renderTable(['id', 'role', 'family', 'capabilities', 'title'], rows)}\n\nconfig schemas: nucleus-ingest templates --json\n`,
    );
    return 0;
  }
  for (const t of templates) reporter.document('template', { ...t });
  return 0;
}
