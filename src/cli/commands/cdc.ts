import { IngestError } from '../../errors/ingest-error.js';
import type { EndpointRegistry } from '../../registry/endpoint-registry.js';
import { createFileEndpoint, unitRefOf } from '../environment.js';
import type { PipelineFile } from '../pipeline-file.js';
import type { Reporter } from '../reporter.js';

/** What a change-capture source offers the `cdc` command (`PostgresCdcSource`). */
interface SlotSource {
  status(opts: { sinkId?: string }): Promise<Array<Record<string, unknown> & { unitId: string }>>;
  dropSlot(unitId: string, opts: { sinkId?: string }): Promise<boolean>;
  close?(): Promise<void>;
}

/**
 * `nucleus-ingest cdc status <pipeline> [unit]`: each unit's replication slot (WAL status, retained WAL, lag);
 * `nucleus-ingest cdc drop-slot <pipeline> <unit>`: drop the unit's slot — only ever when asked (abandoning the unit,
 * or resyncing after the slot was lost; the unit's next `--mode full` run snapshots again).
 * @internal
 */
export async function cdcCommand(o: {
  verb: string | undefined;
  file: PipelineFile;
  registry: EndpointRegistry;
  unitId: string | undefined;
  reporter: Reporter;
  out?: { write(text: string): unknown };
}): Promise<number> {
  const source = (await createFileEndpoint(o.registry, o.file, 'source')) as unknown as Partial<SlotSource>;
  try {
    if (typeof source.status !== 'function' || typeof source.dropSlot !== 'function') {
      throw new IngestError('unsupported', "cdc: the pipeline's source is not a change-capture source (postgres.cdc)");
    }
    // each sink of a unit reads a slot of its own: the pipeline's sink names it
    const { sinkId } = unitRefOf(o.file, o.unitId ?? '');
    if (o.verb === 'status') {
      const all = await source.status({ sinkId });
      const slots = o.unitId ? all.filter((s) => s.unitId === o.unitId) : all;
      if (o.unitId && !slots.length)
        throw new IngestError('not_found', `cdc status: no unit ${JSON.stringify(o.unitId)}`);
      if (o.out) {
        for (const s of slots) {
          const mb = (n: unknown) => (typeof n === 'number' ? `${(n / 1024 / 1024).toFixed(1)} MiB` : '-');
          o.out.write(
            s.exists
              ? `${s.unitId}  slot ${s.slot}  ${s.walStatus ?? '-'}${s.active ? ' (active)' : ''}  retained ${mb(s.retainedBytes)}  lag ${mb(s.lagBytes)}  confirmed ${s.confirmedFlushLsn ?? '-'}${s.warning ? '  WARNING' : ''}\n`
              : `${s.unitId}  slot ${s.slot}  not created yet (the unit's first run creates it)\n`,
          );
        }
      } else o.reporter.document('cdc.status', { slots });
      return 0;
    }
    if (o.verb === 'drop-slot') {
      if (!o.unitId) throw new IngestError('config_invalid', 'cdc drop-slot needs a pipeline file and a unit id');
      const dropped = await source.dropSlot(o.unitId, { sinkId });
      if (o.out)
        o.out.write(
          dropped
            ? `dropped the slot of ${o.unitId}; its next run with --mode full snapshots again\n`
            : `${o.unitId} has no slot\n`,
        );
      else o.reporter.document('cdc.drop-slot', { unitId: o.unitId, dropped });
      return 0;
    }
    throw new IngestError(
      'config_invalid',
      `cdc: unknown action ${JSON.stringify(o.verb ?? '')} (status or drop-slot; see nucleus-ingest --help)`,
      { details: { usage: true } },
    );
  } finally {
    await source.close?.();
  }
}
