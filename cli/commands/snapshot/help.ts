/** `--help` texts of the snapshot subcommands. */
export const HELP: Record<string, string> = {
  ls: `Usage: retap snapshot ls [STORE|FOLDER] [--json]

Lists the versions of a store with their hash, parent (lineage), creation time and size.
Given a folder of stores (default $RETAP_SNAPSHOT_DIR or .retap/snapshots), lists every store.`,
  show: `Usage: retap snapshot show SNAPSHOT [--json] [--routes N]

Summary of one version: name, version, hash, parent, source (host, service, filters), counts per
direction, protocol and status, services and dependencies, time range, routes (top N, default 20),
counters (drops, truncation) and what redaction removed. Quarantined exchanges (kept raw because
they could not be valid exchanges; never replayed) are listed with their reason (first N).`,
  validate: `Usage: retap snapshot validate SNAPSHOT [--json]

Checks every file against its JSON Schema, every hash, every exchange line (JSON, schema,
order) and the manifest counts. Exit code 0 when valid, 1 when not; problems name the file,
line, JSON path and a fix.`,
  diff: `Usage: retap snapshot diff A B [--json] [--limit N]

Added, removed and changed routes (from the manifests) and exchanges (matched by start time
and id). Exit code 0 when identical, 1 when they differ. --limit caps listed ids (default 20).`,
  minimise: `Usage: retap snapshot minimise SNAPSHOT [--keep N] [--out DIR] [--name NAME] [--json]

Writes a new version (parent: SNAPSHOT) that keeps every distinct behaviour and drops repeats. A
behaviour is route × status × response schema (the JSON structure of the answer, else its media
type) × the set of calls the request caused (linked as a replay links them). Requests are kept or
dropped with their whole replay session (a credential chain, else a client connection), so
token chains stay intact; the calls a kept request caused come with it, and calls caused by
no request are all kept. Quarantined exchanges are left out (never replayed).
  --keep N   examples kept per behaviour (default 1)
Prints the coverage kept (behaviours, routes, statuses) and the size saved.`,
  filter: `Usage: retap snapshot filter SNAPSHOT [conditions] [--out DIR] [--name NAME] [--json]

Writes the matching exchanges as a new version (default: next version in the same store,
with the source as parent). All conditions must hold; repeat one to allow several values.
  --from TIME, --to TIME   start time range (ISO time, epoch s/ms/us, or +30s/-5m from the first)
  --direction inbound|outbound
  --method M               request method (repeatable)
  --host GLOB              host the request went to (repeatable)
  --route ROUTE            path glob, optionally with a method: 'GET /orders/*', '/api/**' (repeatable)
  --status S               200, 5xx, 400-499 or none (repeatable)
  --header H               'name', 'name=value' or 'name~regex', request or response (repeatable)
  --service GLOB           observed service (capture's --service, else process name) (repeatable)
  --protocol P             http1, http2, grpc… (repeatable)
  --peer GLOB              the other side's address, or addr:port (repeatable)
  --field F                JSON body field, request or response: 'user.id=42', 'items[*].sku~^A',
                           or 'path' (present); each must hold (repeatable)
  --text TEXT              case-insensitive text anywhere: target, headers, text bodies and what
                           decoders extracted (gRPC messages); each must occur (repeatable)
The same conditions as the traffic viewer's query language (docs/viewer.md).
  --gzip                   write exchanges.jsonl.gz`,
  merge: `Usage: retap snapshot merge SNAPSHOT SNAPSHOT... [--out DIR] [--name NAME] [--json]

Writes one new version holding the exchanges of all inputs, sorted; exact duplicates are
dropped, transforms and tokens are united by id. The parent is the first input.`,
  import: `Usage: retap snapshot import --format har FILE --out DIR [--name NAME] [options]

Makes a snapshot from a HAR 1.2 file (browser devtools, proxies). Redaction applies.
  --direction inbound|outbound   inbound (default): the HAR's server is the service under test
  --gzip                         write exchanges.jsonl.gz
  --no-redact                    keep secrets as they are (not recommended)
  --config FILE                  retap.yaml whose redaction: rules and snapshots.gzip apply
                                 (default ./retap.yaml when present; flags win)
  --json                         print the result as JSON`,
  export: `Usage: retap snapshot export --format har SNAPSHOT [-o FILE|-] [--json]

Writes the version as a HAR 1.2 file (default SNAPSHOT-NAME-vN.har; '-' for stdout) that opens
in browser devtools and HAR viewers. retap's own fields travel in '_retap'.`,
};
