// `tug deploy` exit codes: the contract scripts rely on. Never renumber.
export const ExitCodes = {
  /** The operation completed. */
  OK: 0,
  /** fleet refused or failed the operation (message on stderr), or a rollout was refused before it changed anything. */
  FAILED: 1,
  /** Bad flags, arguments or unit files: nothing was sent to fleet. */
  USAGE: 2,
  /** A rollout failed and was rolled back: the previous version serves, as before. */
  ROLLED_BACK: 3,
  /** A rollout failed and so did its rollback: the cluster needs a human (stderr says what is left). */
  ROLLBACK_FAILED: 4,
  /** fleet's API did not answer (endpoint wrong, fleetd down, network). */
  UNREACHABLE: 5,
} as const;

export type ExitCode = (typeof ExitCodes)[keyof typeof ExitCodes];
