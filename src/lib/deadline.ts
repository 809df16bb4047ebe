/**
 * `work`'s outcome, or a rejection with `timeoutError()` once `ms` have passed, whichever comes first.
 * The timer is cleared either way, so a settled race keeps no handle open (and nothing delays a
 * graceful exit). `work` itself is not cancelled: a late result, or a late failure, is ignored.
 *
 * A promise of its own (and the one `then` makes) and a timer, not Promise.race over a deadline promise
 * with a `finally` (four): every Redis command of every request goes through here, and the extra
 * promises were a share of a request's garbage.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, timeoutError: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(timeoutError()), ms);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
