/**
 * `npm run test:bench` (`bench/run.ts --smoke`): the whole bench, every case, the memory run and the
 * flood, shortened to about a minute, run by `npm test`. It proves that the bench still runs and that
 * every request still answers as its case expects (no 500 under the flood, no socket error), so a
 * change that breaks the bench is found by the change, not by the next person measuring. Its figures
 * mean nothing (seconds of load on a machine that has just run the tests): they are printed, checked
 * against no target and never written to bench/results.
 */
export const SMOKE = process.argv.includes('--smoke');
