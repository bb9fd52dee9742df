/** The named crash points of the crash worker (see docs/guarantees.md). */
export const POINTS = [
  'slice-staged', // a slice writer closed: object + manifest entry written, session not sealed
  'sealed', // session.seal() returned: manifest + _SUCCESS written, run state still says exporting
  'state-exported', // run state saved with phase exported
  'copy', // CRASH_ROWS rows handed to the sink's COPY (mid-slice, transaction open)
  'slice-committed', // the sink committed one slice (ledger + rows), more slices to go
  'sink-returned', // sink.import returned: every slice committed, checkpoint not moved
  'state-imported', // run state saved with phase imported
  'checkpoint-put', // the checkpoint entry was written; run state not committed, no _LANDED
  'state-committed', // run state committed; _LANDED not yet written
  'resume', // run.resumed event: a second process picked up the crashed run
] as const;

/**
 * Points reached only on some paths, used by dedicated tests: the first run-state save (before the source's plan
 * is recorded) and a session destroyed by a resumed export that re-reads the source.
 */
export const PATH_POINTS = ['state-exporting', 'session-destroyed'] as const;
