/**
 * Entry point of the GitHub Action (action.yml, through ci/action.sh), beside cli/main.ts: the
 * Action is one more front door of the `retap` command: turns the action's inputs,
 * handed over as INPUT_* environment variables, into `retap ci` flags and runs it. Runs as root
 * (directly, or under `sudo -E` so GITHUB_OUTPUT, GITHUB_STEP_SUMMARY and the INPUT_* variables
 * come through). When the runner checks failed (RETAP_ACTION_ERROR), it replays nothing and only
 * reports why, as the user the runner runs as.
 *
 *   INPUT_SNAPSHOT=… INPUT_BUILD_COMMAND=… node dist/cli/action.js
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type ErrorCode, ErrorCodes, formatError, RetapError } from '../core/errors.js';

/** Input name → flag. Values that hold several entries are split on new lines (budgets, env). */
const SINGLE: Array<[string, string]> = [
  ['config', '--config'],
  ['snapshot', '--snapshot'],
  ['build-command', '--cmd'],
  ['port', '--port'],
  ['ready', '--ready'],
  ['ready-timeout', '--ready-timeout'],
  ['baseline-command', '--baseline-cmd'],
  ['baseline-port', '--baseline-port'],
  ['runs', '--runs'],
  ['concurrency', '--concurrency'],
  ['mock-miss', '--mock-miss'],
  ['fail-on', '--fail-on'],
  ['report-dir', '--out'],
  ['formats', '--format'],
];
const MULTI: Array<[string, string]> = [
  ['budgets', '--budget'],
  ['env', '--env'],
  ['warn-only', '--warn-only'],
];

/** An input as GitHub names it for JS actions (INPUT_BUILD-COMMAND) or as action.yml maps it (INPUT_BUILD_COMMAND). */
export function input(env: NodeJS.ProcessEnv, name: string): string {
  const upper = name.toUpperCase();
  const v = env[`INPUT_${upper}`] ?? env[`INPUT_${upper.replace(/-/g, '_')}`] ?? '';
  return v.trim();
}

const lines = (v: string): string[] =>
  v
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s !== '' && !s.startsWith('#'));

const truthy = (v: string): boolean => /^(true|yes|1|on)$/i.test(v);

/** `retap ci` arguments for the inputs present in `env` (empty inputs are left to retap.yaml). */
export function actionArgs(env: NodeJS.ProcessEnv): string[] {
  const args: string[] = [];
  for (const [name, flag] of SINGLE) {
    const v = input(env, name);
    if (v !== '') args.push(flag, v);
  }
  for (const [name, flag] of MULTI) {
    const v = input(env, name);
    // warn-only may also be comma-separated on one line
    const items =
      name === 'warn-only'
        ? lines(v)
            .flatMap((s) => s.split(','))
            .map((s) => s.trim())
            .filter(Boolean)
        : lines(v);
    for (const item of items) args.push(flag, item);
  }
  if (input(env, 'step-summary') !== '' && !truthy(input(env, 'step-summary')))
    args.push('--no-step-summary');
  if (input(env, 'annotations') !== '' && !truthy(input(env, 'annotations'))) args.push('--no-annotations');
  if (truthy(input(env, 'exit-zero'))) args.push('--exit-zero');
  return args;
}

/**
 * What the action's runner checks found (ci/action.sh): retap cannot replay on this runner, but it
 * still writes the reports, the outputs and the step summary that say why.
 */
export function runnerProblem(env: NodeJS.ProcessEnv): RetapError | undefined {
  const message = env.RETAP_ACTION_ERROR?.trim();
  if (!message) return undefined;
  const known = Object.values(ErrorCodes) as string[];
  const code = known.includes(env.RETAP_ACTION_ERROR_CODE ?? '')
    ? (env.RETAP_ACTION_ERROR_CODE as ErrorCode)
    : ErrorCodes.ENV_SETUP;
  const hint = env.RETAP_ACTION_ERROR_HINT?.trim();
  return new RetapError(code, message, hint ? { hint } : {});
}

export async function runAction(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const args = ['ci', ...actionArgs(env)];
  process.stderr.write(
    `retap action: retap ${args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')}\n`,
  );
  const problem = runnerProblem(env);
  if (problem) {
    const { reportFailure } = await import('./commands/ci.js');
    const code = await reportFailure(args.slice(1), problem);
    process.stderr.write(`retap ci: ${formatError(problem)}\n`);
    return code;
  }
  const { main } = await import('./main.js');
  return main(args);
}

const invoked = process.argv[1] ? realpathSync(process.argv[1]) : '';
if (invoked === fileURLToPath(import.meta.url)) process.exitCode = await runAction();
