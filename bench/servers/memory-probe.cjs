'use strict';
// Preloaded (`node --expose-gc --require`) into the app the bench loads, and nothing else: on SIGUSR2 it
// runs a full garbage collection and writes process.memoryUsage() to BENCH_MEMORY_FILE, numbered, so the
// bench reads the live heap and the RSS between two runs of load. The app itself is unchanged.
const { writeFileSync } = require('node:fs');

let sample = 0;
process.on('SIGUSR2', () => {
  if (typeof globalThis.gc === 'function') globalThis.gc();
  sample += 1;
  writeFileSync(process.env.BENCH_MEMORY_FILE, JSON.stringify({ sample, ...process.memoryUsage() }));
});
