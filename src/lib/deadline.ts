/**
 * `work`'s outcome, or a rejection with `timeoutError()` once `ms` have passed, whichever comes first.
 * The timer is cleared either way, so a settled race keeps no handle open (and nothing delays a
 * graceful exit). `work` itself is not cancelled: a late result, or a late failure, is ignored.
 *
 * One promise and one timer, not Promise.race over a second promise with a `finally`: every Redis
 * command of every request goes through here, and those two promises more were a share of its garbage.
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
