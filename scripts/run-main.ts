/**
 * Runs an operational script's `main` and exits with its code. An error `expected` says it knows
 * (a configuration problem, a refused input) is printed as its message alone; anything else as
 * "`name` failed: …". Either way exit code 1, and never a stack trace with values in it.
 */
export function runMain(
  name: string,
  main: () => Promise<number>,
  expected: (error: unknown) => error is Error,
): void {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      const message = expected(error) ? error.message : `${name} failed: ${(error as Error).message}`;
      process.stderr.write(`${name}: ${message}\n`);
      process.exit(1);
    },
  );
}
