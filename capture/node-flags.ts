/**
 * The node a recorder runs in. A recorder lives beside the service it watches for as long as the
 * recording lasts: a small young generation keeps its RSS down (V8 otherwise grows it to 32 MiB
 * under a steady stream of short-lived records), and GC on the JS thread alone leaves the other
 * cores to the service instead of V8's helper threads. Measured in bench/capture/overhead
 * (docs/performance.md, "Recorder CPU and memory").
 *
 * V8 takes heap flags only when node starts, so bin/retap.js starts the recording commands again
 * with them (exec: same pid, same fds). RETAP_RECORDER_NODE_FLAGS replaces the list ('' for none).
 */
export const RECORDER_NODE_FLAGS = ['--max-semi-space-size=2', '--single-threaded-gc'];

/** Commands that record for as long as they run. */
export const RECORDER_COMMANDS = ['capture', 'agent'];

/** The flags to start a recorder with, from RETAP_RECORDER_NODE_FLAGS or the default. */
export function recorderNodeFlags(env: NodeJS.ProcessEnv = process.env): string[] {
  const v = env.RETAP_RECORDER_NODE_FLAGS;
  return v === undefined ? [...RECORDER_NODE_FLAGS] : v.split(/\s+/).filter(Boolean);
}
