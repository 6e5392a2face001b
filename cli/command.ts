/** The shape every `retap <command>` module exports. */
export interface Command {
  name: string;
  /** One line for `retap --help`. */
  summary: string;
  /** Full text for `retap <command> --help`. */
  help: string;
  /** True when the command has subcommands that print their own `--help` (`retap snapshot ls --help`). */
  subcommands?: boolean;
  /** Returns the process exit code. Throw RetapError for failures a user can fix. */
  run(argv: string[]): Promise<number>;
}
