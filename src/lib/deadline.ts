/**
 * `work`'s outcome, or a rejection with `timeoutError()` once `ms` have passed, whichever comes first.
 * The timer is cleared either way, so a settled race keeps no handle open (and nothing delays a
 * graceful exit). `work` itself is not cancelled: a late result is ignored.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, timeoutError: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(timeoutError()), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
